package cost

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// SeedEstimateUSD is the seed's own estimate of a month: $79 to $123, $101 on average.
const (
	SeedEstimateLowUSD  = 79
	SeedEstimateHighUSD = 123
	SeedEstimateUSD     = 101
)

// Print writes each bill as a table: one line a billed unit with its quantity, the free
// tier used and its cost, then the total.
func Print(w io.Writer, bills []Bill) error {
	for i, b := range bills {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "(%c) %s\n", 'a'+i, b.Workload.Name)
		tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  service\tunit\tquantity\tfree tier used\tUSD\tnote")
		for _, l := range b.Lines {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%.2f\t%s\n", l.Service, l.Unit, quantity(l.Quantity), quantity(l.Free), l.USD, l.Note)
		}
		fmt.Fprintf(tw, "  AI (Groq, OpenAI)\ttoken\t%s\t-\t%.2f\trules/ai_models.yaml\n", quantity(b.AITokens), b.AIUSD)
		fmt.Fprintf(tw, "  total\t\t\t\t%.2f\t\n", b.Total())
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// quantity prints a count with thousands separators, fractions kept for small ones.
func quantity(v float64) string {
	if v != 0 && v < 100 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
