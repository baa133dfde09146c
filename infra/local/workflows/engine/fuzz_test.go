package engine

import (
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

// FuzzRun runs any workflow that compiles, waking it through its timers and
// round-tripping its state at every wait point; it must never panic.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		"- a:\n    assign:\n      - x: ${1 + 2}\n- b:\n    return: ${x}\n",
		"- l:\n    for:\n      value: v\n      range: [1, 5]\n      steps:\n        - s:\n            switch:\n              - condition: ${v == 3}\n                next: break\n",
		"- p:\n    parallel:\n      shared: [x]\n      for:\n        value: v\n        in: [1, 2]\n        steps:\n          - w:\n              call: sys.sleep\n              args:\n                seconds: ${v}\n",
		"- t:\n    try:\n      raise: \"e\"\n    retry:\n      predicate: ${retry.always}\n      max_retries: 2\n      backoff:\n        initial_delay: 1\n        max_delay: 2\n        multiplier: 2\n",
		"main:\n  steps:\n    - c:\n        call: s\n        result: r\n    - x:\n        return: ${r}\ns:\n  params: [a: 1]\n  steps:\n    - r:\n        return: ${a}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		prog, err := lang.Compile(src, stdlib.Signatures{})
		if err != nil {
			return
		}
		h := &testHost{now: time.Unix(1700000000, 0)}
		x, err := New(prog, h, nil)
		if err != nil {
			return
		}
		for i := 0; i < 20; i++ {
			switch x.Run(20000) {
			case Done:
				return
			case Waiting:
				b, err := x.St.Encode()
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				st, err := DecodeState(b)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				x = Restore(prog, h, st)
				d := x.NextDeadline()
				if d == 0 {
					return
				}
				h.now = time.Unix(0, d)
				x.Wake(d)
			}
		}
	})
}
