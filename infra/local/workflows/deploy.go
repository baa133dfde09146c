package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DefaultParent is where the local stack deploys workflows.
const DefaultParent = "projects/local-project/locations/us-central1"

// DeployFiles deploys each YAML/JSON file through the REST API at baseURL,
// under parent, as the workflow named by the file's base name (without
// extension): created when new, patched (a new revision) when it exists.
// It returns the workflow names in the order given.
func DeployFiles(ctx context.Context, baseURL, parent string, paths ...string) ([]string, error) {
	var names []string
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", p, err)
		}
		id := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		id = strings.ReplaceAll(id, ".", "-")
		name := parent + "/workflows/" + id
		body, _ := json.Marshal(map[string]string{"sourceContents": string(src)})
		code, msg, err := send(ctx, http.MethodGet, baseURL+"/v1/"+name, nil)
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", id, err)
		}
		switch code {
		case http.StatusOK:
			code, msg, err = send(ctx, http.MethodPatch, baseURL+"/v1/"+name+"?updateMask=sourceContents", body)
		case http.StatusNotFound:
			code, msg, err = send(ctx, http.MethodPost, baseURL+"/v1/"+parent+"/workflows?workflowId="+url.QueryEscape(id), body)
		}
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", id, err)
		}
		if code != http.StatusOK {
			return names, fmt.Errorf("workflows: deploy %s: HTTP %d: %s", id, code, msg)
		}
		names = append(names, name)
	}
	return names, nil
}

func send(ctx context.Context, method, u string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
