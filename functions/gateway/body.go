package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/api/iterator"
)

var errDone = iterator.Done

// readBody reads a request body of at most MaxBodyBytes.
func readBody(req *request) ([]byte, *apiError) {
	if req.ContentLength > MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBodyBytes)
		}
		return nil, &apiError{code: http.StatusBadRequest, msg: "could not read body", cause: err}
	}
	return b, nil
}

// bodyError names what is wrong with a JSON body: the field of the wrong type, or where
// the JSON breaks.
func bodyError(err error) *apiError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("field %s: must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value), cause: err}
	case errors.As(err, &te):
		return &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("body: must be a JSON object, not %s", te.Value), cause: err}
	case errors.As(err, &se):
		return &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("malformed JSON at byte %d", se.Offset), cause: err}
	default:
		return &apiError{code: http.StatusBadRequest, msg: "malformed JSON", cause: err}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "a list"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// Spec fields whose type the gateway checks (a missing one is stage 1's verdict, not a 400).
var (
	specStrings = []string{"agent_name", "purpose", "industry", "engagement_id"}
	specLists   = []string{"scope_boundaries", "required_capabilities", "data_access_requirements", "external_systems", "risk_flags"}
)

// agentBody is a submitted (or revised) request: the spec and the way of working as JSON
// values (float64 numbers, so Firestore can store them as they are).
type agentBody struct {
	Spec         map[string]any
	WayOfWorking map[string]any
	// all is the whole body as decoded, hashed canonically for idempotency.
	all map[string]any
}

// parseAgentBody checks the types of what the gateway knows of a request body and names
// the first field that is wrong. Fields not sent are left to stage 1; a null counts as not
// sent.
func parseAgentBody(req *request) (agentBody, *apiError) {
	raw, aerr := readBody(req)
	if aerr != nil {
		return agentBody{}, aerr
	}
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		return agentBody{}, bodyError(err)
	}
	if all == nil {
		return agentBody{}, errorf(http.StatusBadRequest, "body: must be a JSON object")
	}
	b := agentBody{Spec: map[string]any{}, WayOfWorking: map[string]any{}, all: all}
	for field, into := range map[string]*map[string]any{"spec": &b.Spec, "way_of_working": &b.WayOfWorking} {
		switch v := all[field].(type) {
		case nil:
		case map[string]any:
			*into = v
		default:
			return agentBody{}, errorf(http.StatusBadRequest, "field %s: must be an object", field)
		}
	}
	for k, v := range b.Spec {
		if v == nil {
			delete(b.Spec, k)
		}
	}
	for _, f := range specStrings {
		if v, ok := b.Spec[f]; ok {
			if _, ok := v.(string); !ok {
				return agentBody{}, errorf(http.StatusBadRequest, "field spec.%s: must be a string", f)
			}
		}
	}
	for _, f := range specLists {
		v, ok := b.Spec[f]
		if !ok {
			continue
		}
		l, ok := v.([]any)
		if !ok {
			return agentBody{}, errorf(http.StatusBadRequest, "field spec.%s: must be a list of strings", f)
		}
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return agentBody{}, errorf(http.StatusBadRequest, "field spec.%s: must be a list of strings", f)
			}
		}
	}
	if v, ok := b.Spec["controls"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return agentBody{}, errorf(http.StatusBadRequest, "field spec.controls: must be an object of booleans")
		}
		for k, c := range m {
			if _, ok := c.(bool); !ok {
				return agentBody{}, errorf(http.StatusBadRequest, "field spec.controls.%s: must be a boolean", k)
			}
		}
	}
	if v, ok := b.Spec["estimated_cost_usd_per_day"]; ok {
		if _, ok := v.(float64); !ok {
			return agentBody{}, errorf(http.StatusBadRequest, "field spec.estimated_cost_usd_per_day: must be a number")
		}
	}
	return b, nil
}
