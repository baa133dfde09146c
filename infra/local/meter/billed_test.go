package meter

import (
	"testing"
	"time"
)

// Cloud Run functions bill each request's time rounded up to the next 100 ms.
func TestBilledMillis(t *testing.T) {
	for _, tc := range []struct {
		took time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 100},
		{3 * time.Millisecond, 100},
		{100 * time.Millisecond, 100},
		{100*time.Millisecond + time.Microsecond, 200},
		{1234 * time.Millisecond, 1300},
	} {
		if got := billedMillis(tc.took); got != tc.want {
			t.Errorf("billedMillis(%v) = %d, want %d", tc.took, got, tc.want)
		}
	}
}
