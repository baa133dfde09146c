package gateway

import (
	"math"
	"sync"
	"time"
)

// RateLimit is a token bucket: Burst actions at once, then one more every Every.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// DefaultVerifyLimit is each caller's allowance of audit stream walks: a walk reads every
// entry of the stream, so a caller may not repeat it faster than this.
var DefaultVerifyLimit = RateLimit{Burst: 5, Every: time.Minute}

// LimitBody names, in a 429 answer, the limit that was reached.
type LimitBody struct {
	Name         string  `json:"name"`
	Burst        int     `json:"burst"`
	EverySeconds float64 `json:"every_seconds"`
}

// maxBuckets bounds the callers a limiter remembers; a full bucket is the same as none,
// so those are forgotten first.
const maxBuckets = 10000

// limiter keeps one token bucket per caller (principal).
type limiter struct {
	limit RateLimit
	mu    sync.Mutex
	b     map[string]bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(l RateLimit) *limiter {
	return &limiter{limit: l, b: map[string]bucket{}}
}

// level is the bucket's tokens at now.
func (l *limiter) level(b bucket, now time.Time) float64 {
	if l.limit.Every <= 0 {
		return float64(l.limit.Burst)
	}
	return math.Min(float64(l.limit.Burst), b.tokens+float64(now.Sub(b.at))/float64(l.limit.Every))
}

// take spends one of caller's tokens; when none is left it says how long until one is.
func (l *limiter) take(caller string, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, seen := l.b[caller]
	if !seen {
		b = bucket{tokens: float64(l.limit.Burst), at: now}
		if len(l.b) >= maxBuckets {
			l.forgetFull(now)
		}
	}
	t := l.level(b, now)
	if t < 1 {
		return time.Duration((1 - t) * float64(l.limit.Every)), false
	}
	l.b[caller] = bucket{tokens: t - 1, at: now}
	return 0, true
}

// forgetFull drops every bucket that has refilled; if none has, the oldest half goes, so
// memory stays bounded whoever calls (a forgotten caller starts again with a full bucket).
func (l *limiter) forgetFull(now time.Time) {
	for k, b := range l.b {
		if l.level(b, now) >= float64(l.limit.Burst) {
			delete(l.b, k)
		}
	}
	for k := range l.b {
		if len(l.b) < maxBuckets/2 {
			break
		}
		delete(l.b, k)
	}
}

// refund gives back a token taken for an action that turned out to cost nothing.
func (l *limiter) refund(caller string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.b[caller]; ok {
		b.tokens = math.Min(float64(l.limit.Burst), b.tokens+1)
		l.b[caller] = b
	}
}

func (l *limiter) describe(name string) *LimitBody {
	return &LimitBody{Name: name, Burst: l.limit.Burst, EverySeconds: l.limit.Every.Seconds()}
}
