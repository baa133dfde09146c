package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/infraspec"
)

// superviseWorkflows starts the Workflows emulator again, on the same address, state folder
// and clock, whenever it dies while the stack runs. Its executions are durable under the
// state folder, so they carry on; a virtual clock resumes where it stood.
func (r *run) superviseWorkflows(ctx context.Context, p *proc, clock string) {
	for {
		g := p.current()
		if g == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-g.done:
		}
		if p.current() != g {
			continue // stopped or replaced meanwhile
		}
		fmt.Fprintf(r.o.Out, "  workflows   the emulator (process group %d) exited: %v; starting it again on %s\n", g.pgid(), g.err, p.url)
		for attempt := 1; ; attempt++ {
			err := p.start(ctx, 30*time.Second)
			if err == nil {
				break
			}
			if errors.Is(err, errClosed) || ctx.Err() != nil {
				return
			}
			fmt.Fprintf(r.o.Out, "  workflows   restart %d failed: %v\n", attempt, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt), 5) * time.Second):
			}
		}
		pid, _ := p.state()
		r.setGroup("workflows", pid)
		fmt.Fprintf(r.o.Out, "  workflows   restarted on %s as process group %d (clock %s, state kept)\n", p.url, pid, clock)
	}
}

// ServiceAccountName is the resource name a workflow's service account has in the local
// project, as the Workflows API shows it.
func ServiceAccountName(account string) string {
	return "projects/" + Project + "/serviceAccounts/" + account + "@" + Project + ".iam.gserviceaccount.com"
}

// deployWorkflows deploys each workflow infrastructure.yaml declares through the emulator's
// Workflows API, as Terraform does to Cloud Workflows: its source, service account, call log
// level and the user environment variables holding its functions' URLs. A workflow whose
// source is not written yet is skipped; a variable naming a function that does not run is
// left out; both with a warning. Redeploying an unchanged source adds no revision, and a new
// one leaves running executions on theirs.
func deployWorkflows(ctx context.Context, root, baseURL string, spec *infraspec.Spec, fnURLs map[string]string, out io.Writer) ([]string, error) {
	parent := WorkflowsParent(spec)
	var names []string
	for _, w := range spec.Workflows {
		src, err := os.ReadFile(filepath.Join(root, w.Source))
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "  skipped     workflow %s: no %s yet\n", w.Name, w.Source)
			continue
		}
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", w.Name, err)
		}
		env := map[string]string{}
		vars := make([]string, 0, len(w.FunctionURLs))
		for v := range w.FunctionURLs {
			vars = append(vars, v)
		}
		slices.Sort(vars)
		for _, v := range vars {
			fn := w.FunctionURLs[v]
			if u, ok := fnURLs[fn]; ok {
				env[v] = u
				continue
			}
			fmt.Fprintf(out, "  warning     workflow %s deployed without %s: function %s is not running\n", w.Name, v, fn)
		}
		body, err := json.Marshal(map[string]any{
			"sourceContents": string(src),
			"serviceAccount": ServiceAccountName(w.ServiceAccount),
			"callLogLevel":   w.CallLogLevel,
			"userEnvVars":    env,
		})
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", w.Name, err)
		}
		name := parent + "/workflows/" + w.Name
		code, msg, err := send(ctx, http.MethodGet, baseURL+"/v1/"+name, nil)
		if err == nil {
			switch code {
			case http.StatusOK:
				code, msg, err = send(ctx, http.MethodPatch, baseURL+"/v1/"+name+"?updateMask=sourceContents,serviceAccount,callLogLevel,userEnvVars", body)
			case http.StatusNotFound:
				code, msg, err = send(ctx, http.MethodPost, baseURL+"/v1/"+parent+"/workflows?workflowId="+url.QueryEscape(w.Name), body)
			}
		}
		if err != nil {
			return names, fmt.Errorf("workflows: deploy %s: %w", w.Name, err)
		}
		if code != http.StatusOK {
			return names, fmt.Errorf("workflows: deploy %s from %s: HTTP %d: %s", w.Name, w.Source, code, msg)
		}
		names = append(names, name)
	}
	return names, nil
}

// undeclaredWorkflows lists the YAML files of workflows/ that infrastructure.yaml does not
// declare: they are not deployed, here or by Terraform.
func undeclaredWorkflows(root string, spec *infraspec.Spec) []string {
	files, _ := filepath.Glob(filepath.Join(root, "workflows", "*.yaml"))
	var out []string
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(spec.Workflows, func(w infraspec.Workflow) bool { return filepath.Clean(w.Source) == rel }) {
			out = append(out, rel)
		}
	}
	return out
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
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
