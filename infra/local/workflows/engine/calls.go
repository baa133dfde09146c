package engine

import (
	"net/url"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

func (x *Exec) callDepth(t *Thread) int {
	n := 0
	for _, f := range t.Stack {
		if f.Kind == fCall {
			n++
		}
	}
	return n + x.nested
}

func (x *Exec) call(t *Thread, s *lang.Step, sid int) {
	if sub := x.Prog.Subs[s.Call]; sub != nil {
		if x.callDepth(t) >= MaxCallDepth {
			x.raise(t, lang.Errorf(lang.TagRecursion, "RecursionError: maximum call depth %d exceeded", MaxCallDepth).Value, true)
			return
		}
		vars := Vars{}
		for _, p := range sub.Params {
			if a, ok := s.Args[p.Name]; ok {
				v, err := a.Eval(x)
				if err != nil {
					x.raiseErr(t, err)
					return
				}
				vars[p.Name] = lang.Copy(v)
				continue
			}
			if p.HasDefault {
				v, err := p.Default.Eval(x)
				if err != nil {
					x.raiseErr(t, err)
					return
				}
				vars[p.Name] = v
				continue
			}
			x.raise(t, lang.Errorf(lang.TagType, "%s: missing argument %q", sub.Name, p.Name).Value, true)
			return
		}
		push(t, &Frame{Kind: fCall, Sub: sub.Name, Vars: vars, Ret: s.Result, Owner: sid + 1})
		push(t, &Frame{Kind: fBlock, Index: sub.Body})
		return
	}
	fn, ok := stdlib.Lookup(s.Call)
	if !ok {
		x.raise(t, lang.Errorf(lang.TagValue, "unknown function %q", s.Call).Value, true)
		return
	}
	args := make([]any, 0, len(fn.Params))
	named := map[string]any{}
	for name, a := range s.Args {
		v, err := a.Eval(x)
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		named[name] = v
	}
	if httpRequest(s.Call) {
		x.countHTTP(named["url"])
	}
	last := -1
	for i, p := range fn.Params {
		if _, ok := named[p]; ok {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		args = append(args, named[fn.Params[i]])
	}
	if fn.Blocking {
		x.blocking(t, s, sid, args)
		return
	}
	v, err := fn.Fn(x, args)
	if err != nil {
		x.raiseErr(t, err)
		return
	}
	if s.Result != "" {
		_ = x.setVar(t, s.Result, v)
	}
	x.afterStep(t, s)
	x.effect = x.effect || httpRequest(s.Call) || s.Call == "events.create_callback_endpoint"
}

// httpRequest says whether a standard library function sends a request (the retry
// predicates under http. do not).
func httpRequest(name string) bool {
	switch name {
	case "http.get", "http.post", "http.put", "http.patch", "http.delete", "http.request":
		return true
	}
	return false
}

// countHTTP counts one http.* request attempt, external unless its URL is Google's or
// the host says it stands for a Google Cloud service.
func (x *Exec) countHTTP(rawURL any) {
	x.St.HTTPCalls++
	s, _ := rawURL.(string)
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return // the request fails before it leaves; nothing external was called
	}
	internal := GoogleInternal(u)
	if c, ok := x.Host.(URLClassifier); ok && !internal {
		internal = c.InternalURL(u)
	}
	if !internal {
		x.St.ExtHTTPCalls++
	}
}

func seconds(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func (x *Exec) blocking(t *Thread, s *lang.Step, sid int, args []any) {
	arg := func(i int) any {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	now := x.Host.Now()
	switch s.Call {
	case "sys.sleep":
		d, ok := seconds(arg(0))
		if !ok || d < 0 {
			x.raise(t, lang.Errorf(lang.TagValue, "sys.sleep: seconds must be a non-negative number").Value, true)
			return
		}
		t.Wait = &Wait{Kind: WSleep, Until: now.Add(time.Duration(d * float64(time.Second))).UnixNano(), Result: s.Result, Step: sid}
	case "sys.sleep_until":
		ts, _ := arg(0).(string)
		when, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			x.raise(t, lang.Errorf(lang.TagValue, "sys.sleep_until: bad time %q", ts).Value, true)
			return
		}
		t.Wait = &Wait{Kind: WSleep, Until: max(when.UnixNano(), now.UnixNano()), Result: s.Result, Step: sid}
	case RunChild:
		cs, ok := x.Host.(ChildStarter)
		if !ok {
			x.raise(t, lang.Errorf(lang.TagSystem, "%s is not available here", RunChild).Value, true)
			return
		}
		wf, _ := arg(0).(string)
		if p, ok := arg(3).(string); ok && p != "" && !strings.Contains(wf, "/") {
			loc, _ := arg(2).(string)
			if loc == "" {
				loc, _ = x.Host.Getenv("GOOGLE_CLOUD_LOCATION")
			}
			wf = "projects/" + p + "/locations/" + loc + "/workflows/" + wf
		}
		child, err := cs.StartChild(wf, arg(1))
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		t.Wait = &Wait{Kind: WChild, Callback: child, Result: s.Result, Step: sid}
	case "events.await_callback":
		x.St.Awaits++
		id, err := x.callbackID(arg(0))
		if err != nil {
			x.raiseErr(t, err)
			return
		}
		cb := x.St.Callbacks[id]
		if len(cb.Queue) > 0 {
			v := cb.Queue[0]
			cb.Queue = cb.Queue[1:]
			if s.Result != "" {
				_ = x.setVar(t, s.Result, v)
			}
			x.afterStep(t, s)
			return
		}
		timeout := float64(DefaultTimeout)
		if v, ok := seconds(arg(1)); ok {
			timeout = v
		}
		cb.Waiter = t.ID
		cb.Since = now.UnixNano()
		t.Wait = &Wait{Kind: WCallback, Callback: id, Until: now.Add(time.Duration(timeout * float64(time.Second))).UnixNano(), Result: s.Result, Step: sid}
	}
}

func (x *Exec) callbackID(v any) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", lang.Errorf(lang.TagType, "events.await_callback: callback must be the map from create_callback_endpoint")
	}
	u, _ := m["url"].(string)
	i := strings.LastIndex(u, "/callbacks/")
	if i < 0 {
		return "", lang.Errorf(lang.TagValue, "events.await_callback: not a callback url %q", u)
	}
	id := u[i+len("/callbacks/"):]
	if x.St.Callbacks[id] == nil {
		return "", lang.Errorf(lang.TagValue, "events.await_callback: callback %q belongs to another execution", id)
	}
	return id, nil
}
