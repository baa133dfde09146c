package notifier

import (
	"errors"
	"fmt"
	"slices"

	"waooaw.dev/governance/shared/rules"
)

// Table is the rules table of the cascade's channels and delays.
const Table = "notification_cascade"

// Step is one channel of a cascade and when it is sent, in seconds after the request: the
// workflow's argument carries them, so the workflow's clock alone decides when.
type Step struct {
	Channel      string `json:"channel"`
	AfterSeconds int    `json:"after_seconds"`
	Rule         string `json:"rule"`
}

// Steps are the cascade of an approval type, earliest first.
func Steps(set *rules.Set, approvalType string) ([]Step, error) {
	res, err := set.Evaluate(Table, map[string]any{"type": approvalType})
	if err != nil {
		return nil, fmt.Errorf("notifier: %s: %w", Table, err)
	}
	out := make([]Step, 0, len(res.Matches))
	for _, m := range res.Matches {
		ch, _ := m.Then["channel"].(string)
		after, ok := m.Then["after_minutes"].(float64)
		if ch == "" || !ok || after < 0 {
			return nil, fmt.Errorf("notifier: %s: rule %s: want a channel and after_minutes >= 0", Table, m.RuleID)
		}
		out = append(out, Step{Channel: ch, AfterSeconds: int(after * 60), Rule: m.RuleID})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("notifier: %s: no channel for approval type %q", Table, approvalType)
	}
	slices.SortStableFunc(out, func(a, b Step) int { return a.AfterSeconds - b.AfterSeconds })
	return out, nil
}

// ChannelNames are the channels any row of the table names, which the configuration must
// bind.
func ChannelNames(set *rules.Set) ([]string, error) {
	t, ok := set.Table(Table)
	if !ok {
		return nil, fmt.Errorf("notifier: rules table %s: %w", Table, rules.ErrUnknownTable)
	}
	var names []string
	for _, r := range t.Rules {
		ch, _ := r.Then["channel"].(string)
		if ch == "" {
			return nil, errors.New("notifier: " + Table + ": rule " + r.ID + " names no channel")
		}
		if !slices.Contains(names, ch) {
			names = append(names, ch)
		}
	}
	return names, nil
}
