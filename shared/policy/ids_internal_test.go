package policy

import (
	"strconv"
	"sync"
	"testing"
)

func TestIDSourceUniqueAcrossBlocks(t *testing.T) {
	s := newIDSource("p")
	const goroutines, each = 4, idsPerBlock
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			local := make([]string, 0, each)
			for range each {
				local = append(local, s.id())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("id %s handed out twice", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
	if len(seen) != goroutines*each {
		t.Fatalf("%d distinct ids, want %d", len(seen), goroutines*each)
	}
	// Sequence numbers run 1..n without gaps, whatever the blocks.
	for i := 1; i <= goroutines*each; i++ {
		if id := "p-" + strconv.FormatUint(uint64(i), 36); !seen[id] {
			t.Fatalf("id %s missing", id)
		}
	}
}

func TestIDSequenceMatchesBase36(t *testing.T) {
	s := newIDSource("x")
	for n := uint64(1); n <= 50_000; n++ { // past 36^3 = 46,656: four carries deep
		if got, want := s.id(), "x-"+strconv.FormatUint(n, 36); got != want {
			t.Fatalf("id %d = %s, want %s", n, got, want)
		}
	}
}
