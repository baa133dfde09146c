package policy

import (
	"strings"
	"sync"
)

// idsPerBlock is how many decision ids one allocation holds.
const idsPerBlock = 1024

// idSource hands out decision ids ("<prefix>-<sequence in base 36>") cut
// from one string formatted for a block of them, so that a decision served
// from the cache allocates nothing of its own. An id keeps its block alive
// while it is referenced; ids live as long as a response or an attestation
// in the queue.
type idSource struct {
	prefix string
	mu     sync.Mutex
	block  string
	ends   []int // end of each id in block
	next   int   // index in ends of the next id
	// digits is the last sequence number handed out, in base 36, most
	// significant digit first: counted up in place, which formats a block
	// several times faster than dividing each number by 36.
	digits []byte
}

func newIDSource(prefix string) *idSource {
	return &idSource{prefix: prefix, ends: make([]int, 0, idsPerBlock), digits: []byte{'0'}}
}

func (s *idSource) id() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == len(s.ends) {
		s.refill()
	}
	start := 0
	if s.next > 0 {
		start = s.ends[s.next-1]
	}
	id := s.block[start:s.ends[s.next]]
	s.next++
	return id
}

// refill formats the next block; mu is held.
func (s *idSource) refill() {
	var b strings.Builder
	b.Grow(idsPerBlock * (len(s.prefix) + 1 + 8))
	s.ends = s.ends[:0]
	for range idsPerBlock {
		s.increment()
		b.WriteString(s.prefix)
		b.WriteByte('-')
		b.Write(s.digits)
		s.ends = append(s.ends, b.Len())
	}
	s.block = b.String() // no copy: the Builder's bytes become the string
	s.next = 0
}

// increment adds one to digits, as strconv.FormatUint(n+1, 36) would print it.
func (s *idSource) increment() {
	for i := len(s.digits) - 1; i >= 0; i-- {
		switch c := s.digits[i]; c {
		case '9':
			s.digits[i] = 'a'
			return
		case 'z':
			s.digits[i] = '0' // carry
		default:
			s.digits[i] = c + 1
			return
		}
	}
	s.digits = append([]byte{'1'}, s.digits...)
}
