package clock

import (
	"sync"
	"testing"
	"time"
)

func TestTimersVirtual(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	var fired []string
	tm := NewTimers(v, func(k string) { fired = append(fired, k) })
	defer tm.Close()
	tm.Add("b", 20)
	tm.Add("a", 10)
	tm.Add("c", 30)
	if d, _ := tm.Next(); d != 10 {
		t.Fatalf("next %d", d)
	}
	for _, k := range tm.PopDue(20) {
		tm.fire(k)
	}
	if len(fired) != 2 || fired[0] != "a" || fired[1] != "b" {
		t.Fatalf("fired %v", fired)
	}
	v.Set(time.Unix(100, 0))
	v.Set(time.Unix(50, 0))
	if got := v.Now(); !got.Equal(time.Unix(100, 0)) {
		t.Fatalf("virtual clock at %v after moving back, want it to stay at 100s", got)
	}
}

func TestTimersReal(t *testing.T) {
	var mu sync.Mutex
	got := make(chan string, 2)
	tm := NewTimers(Real{}, func(k string) { mu.Lock(); got <- k; mu.Unlock() })
	defer tm.Close()
	now := time.Now().UnixNano()
	tm.Add("later", now+int64(40*time.Millisecond))
	tm.Add("soon", now+int64(10*time.Millisecond))
	for _, want := range []string{"soon", "later"} {
		select {
		case k := <-got:
			if k != want {
				t.Fatalf("fired %s, want %s", k, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never fired", want)
		}
	}
}
