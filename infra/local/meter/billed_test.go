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

// Pub/Sub bills each publish request's messages with their id and 20 bytes of timestamp,
// and at least 1,000 bytes a request.
func TestPublishedBilledBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int64
		ids   []string
		want  int64
	}{
		{"one small message", []int64{10}, []string{"1"}, 1000},
		{"just under the minimum", []int64{969}, []string{"1234567890"}, 1000},
		{"just over it", []int64{971}, []string{"1234567890"}, 1001},
		{"a batch shares one minimum", []int64{300, 300}, []string{"1", "2"}, 1000},
		{"a large batch", []int64{600, 600}, []string{"1", "2"}, 1242},
	} {
		got := published("t", tc.sizes, tc.ids)["pubsub.publish.billed_bytes"]
		if got != tc.want {
			t.Errorf("%s: billed %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}
