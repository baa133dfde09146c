package service

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

func validWorkflowID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Compile validates source as Google does at deploy time.
func Compile(src string) (*lang.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, invalid("sourceContents is required")
	}
	if len(src) > 128*1024 {
		return nil, invalid("sourceContents exceeds 128 KB")
	}
	p, err := lang.Compile(src, stdlib.Signatures{})
	if err != nil {
		return nil, invalid("workflow is invalid: %v", err)
	}
	return p, nil
}

// WorkflowInput is what create and patch accept.
type WorkflowInput struct {
	SourceContents string
	Description    string
	Labels         map[string]string
	CallLogLevel   string
	ServiceAccount string
	UserEnvVars    map[string]string
}

// CreateWorkflow deploys a new workflow under parent
// ("projects/P/locations/L").
func (s *Service) CreateWorkflow(parent, id string, in WorkflowInput) (*Operation, error) {
	if !validWorkflowID(id) {
		return nil, invalid("invalid workflowId %q", id)
	}
	prog, err := Compile(in.SourceContents)
	if err != nil {
		return nil, fmt.Errorf("workflows: deploy %s: %w", id, err)
	}
	name := parent + "/workflows/" + id
	now := s.Now().UTC()
	wf := &Workflow{Name: name, Description: in.Description, Labels: in.Labels, State: "ACTIVE",
		CreateTime: now, UpdateTime: now, RevisionCreateTime: now, SourceContents: in.SourceContents,
		CallLogLevel: in.CallLogLevel, ServiceAccount: in.ServiceAccount, UserEnvVars: in.UserEnvVars,
		Revisions: map[string]string{}, progs: map[string]*lang.Program{}}
	wf.newRevision(in.SourceContents, prog)
	s.mu.Lock()
	if _, ok := s.workflows[name]; ok {
		s.mu.Unlock()
		return nil, exists("workflow %s already exists", name)
	}
	s.workflows[name] = wf
	s.mu.Unlock()
	if err := s.saveWorkflow(wf); err != nil {
		return nil, err
	}
	return s.newOp(parent, "create", wf, nil), nil
}

func (w *Workflow) newRevision(src string, prog *lang.Program) {
	w.RevSeq++
	var b [2]byte
	_, _ = rand.Read(b[:])
	w.RevisionID = fmt.Sprintf("%06d-%03x", w.RevSeq, int(b[0])<<4|int(b[1]>>4))
	w.Revisions[w.RevisionID] = src
	w.progs[w.RevisionID] = prog
	if w.RevisionTimes == nil {
		w.RevisionTimes = map[string]time.Time{}
	}
	w.RevisionTimes[w.RevisionID] = w.RevisionCreateTime
}

func (s *Service) saveWorkflow(w *Workflow) error {
	s.mu.RLock()
	data, err := json.Marshal(w)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("workflows: save %s: %w", w.Name, err)
	}
	if err := s.opts.Store.PutWorkflow(w.Name, data); err != nil {
		return fmt.Errorf("workflows: save %s: %w", w.Name, err)
	}
	return nil
}

func (s *Service) newOp(parent, verb string, wf *Workflow, e *Error) *Operation {
	op := &Operation{Name: fmt.Sprintf("%s/operations/operation-%d-%s", parent, s.Now().UnixNano(), newID()[:8]),
		Workflow: wf.copy(), Err: e, Verb: verb, Created: s.Now().UTC()}
	s.mu.Lock()
	s.ops[op.Name] = op
	s.mu.Unlock()
	return op
}

func (w *Workflow) copy() *Workflow {
	if w == nil {
		return nil
	}
	c := *w
	c.Revisions = nil
	c.progs = nil
	return &c
}

// ListRevisions returns a workflow's revisions, newest first.
func (s *Service) ListRevisions(name string, pageSize int, pageToken string) ([]*Workflow, string, error) {
	s.mu.RLock()
	w, ok := s.workflows[name]
	var out []*Workflow
	if ok {
		for rev, src := range w.Revisions {
			c := w.copy()
			c.RevisionID, c.SourceContents = rev, src
			c.RevisionCreateTime = w.RevisionTimes[rev]
			out = append(out, c)
		}
	}
	s.mu.RUnlock()
	if !ok {
		return nil, "", notFound("workflow %s not found", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RevisionID > out[j].RevisionID })
	return page(out, pageSize, pageToken, 100)
}

// RevisionSource returns the source of one revision of a workflow: the one an
// execution runs, which need not be the current one.
func (s *Service) RevisionSource(name, rev string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, ok := s.workflows[name]
	if !ok {
		return "", notFound("workflow %s not found", name)
	}
	src, ok := w.Revisions[rev]
	if !ok {
		return "", notFound("revision %s of %s not found", rev, name)
	}
	return src, nil
}

// GetOperation returns a long-running operation.
func (s *Service) GetOperation(name string) (*Operation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	op, ok := s.ops[name]
	if !ok {
		return nil, notFound("operation %s not found", name)
	}
	return op, nil
}

// GetWorkflow returns a workflow (a copy).
func (s *Service) GetWorkflow(name string) (*Workflow, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, ok := s.workflows[name]
	if !ok {
		return nil, notFound("workflow %s not found", name)
	}
	return w.copy(), nil
}

// ListWorkflows lists the workflows under parent, sorted by name.
func (s *Service) ListWorkflows(parent string, pageSize int, pageToken string) ([]*Workflow, string, error) {
	s.mu.RLock()
	var all []*Workflow
	for n, w := range s.workflows {
		if strings.HasPrefix(n, parent+"/workflows/") {
			all = append(all, w.copy())
		}
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return page(all, pageSize, pageToken, 500)
}

func page[T any](all []T, size int, token string, maxSize int) ([]T, string, error) {
	off := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 {
			return nil, "", invalid("invalid pageToken %q", token)
		}
		off = n
	}
	if size <= 0 || size > maxSize {
		size = maxSize
	}
	if off > len(all) {
		off = len(all)
	}
	end := min(off+size, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[off:end], next, nil
}

// UpdateWorkflow applies a patch; a new source makes a new revision.
func (s *Service) UpdateWorkflow(name string, in WorkflowInput, mask []string) (*Operation, error) {
	var prog *lang.Program
	has := func(f string) bool {
		if len(mask) == 0 {
			return true
		}
		for _, m := range mask {
			if m == f {
				return true
			}
		}
		return false
	}
	if has("sourceContents") && in.SourceContents != "" {
		p, err := Compile(in.SourceContents)
		if err != nil {
			return nil, fmt.Errorf("workflows: update %s: %w", name, err)
		}
		prog = p
	}
	s.mu.Lock()
	w, ok := s.workflows[name]
	if !ok {
		s.mu.Unlock()
		return nil, notFound("workflow %s not found", name)
	}
	now := s.Now().UTC()
	if prog != nil && in.SourceContents != w.SourceContents {
		w.SourceContents = in.SourceContents
		w.RevisionCreateTime = now
		w.newRevision(in.SourceContents, prog)
	}
	if has("description") && (len(mask) > 0 || in.Description != "") {
		w.Description = in.Description
	}
	if has("labels") && (len(mask) > 0 || in.Labels != nil) {
		w.Labels = in.Labels
	}
	if has("callLogLevel") && in.CallLogLevel != "" {
		w.CallLogLevel = in.CallLogLevel
	}
	if has("userEnvVars") && (len(mask) > 0 || in.UserEnvVars != nil) {
		w.UserEnvVars = in.UserEnvVars
	}
	w.UpdateTime = now
	s.mu.Unlock()
	if err := s.saveWorkflow(w); err != nil {
		return nil, err
	}
	parent := name[:strings.Index(name, "/workflows/")]
	return s.newOp(parent, "update", w, nil), nil
}

// DeleteWorkflow removes a workflow; its executions stay readable.
func (s *Service) DeleteWorkflow(name string) (*Operation, error) {
	s.mu.Lock()
	w, ok := s.workflows[name]
	if ok {
		delete(s.workflows, name)
	}
	s.mu.Unlock()
	if !ok {
		return nil, notFound("workflow %s not found", name)
	}
	if err := s.opts.Store.DeleteWorkflow(name); err != nil {
		return nil, fmt.Errorf("workflows: delete %s: %w", name, err)
	}
	// Google cancels the running executions of a deleted workflow.
	s.mu.RLock()
	list := append([]*Execution(nil), s.byWF[name]...)
	s.mu.RUnlock()
	for _, e := range list {
		e.cancelled.Store(true)
		e.mu.Lock()
		if e.State == StateActive {
			s.logErr(s.markCancelled(e))
		}
		e.mu.Unlock()
	}
	parent := name[:strings.Index(name, "/workflows/")]
	return s.newOp(parent, "delete", w, nil), nil
}

// program finds the compiled revision an execution runs.
func (s *Service) program(wfName, rev string) (*lang.Program, *Workflow, error) {
	s.mu.RLock()
	w, ok := s.workflows[wfName]
	s.mu.RUnlock()
	if !ok {
		return nil, nil, notFound("workflow %s not found", wfName)
	}
	if p := w.progs[rev]; p != nil {
		return p, w, nil
	}
	return nil, nil, notFound("revision %s of %s not found", rev, wfName)
}
