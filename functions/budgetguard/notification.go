package budgetguard

import (
	"encoding/json"
	"fmt"
	"time"

	"waooaw.dev/governance/shared/events"
)

// Notification is one Cloud Billing budget notification: the message's data in billing's
// own JSON (no envelope; shared/schema/avro/budget_alerts.avsc) and its attributes.
// alertThresholdExceeded and forecastThresholdExceeded are sent only once a threshold
// is crossed; they are kept for the audit entry and decide nothing: the state follows
// costAmount against rules/budget_thresholds, so the thresholds configured on the billing
// budget cannot drift from the platform's.
type Notification struct {
	BudgetDisplayName         string   `json:"budgetDisplayName"`
	CostAmount                float64  `json:"costAmount"`
	CostIntervalStart         string   `json:"costIntervalStart"`
	BudgetAmount              float64  `json:"budgetAmount"`
	BudgetAmountType          string   `json:"budgetAmountType"`
	CurrencyCode              string   `json:"currencyCode"`
	AlertThresholdExceeded    *float64 `json:"alertThresholdExceeded,omitempty"`
	ForecastThresholdExceeded *float64 `json:"forecastThresholdExceeded,omitempty"`

	BillingAccountID string    `json:"-"`
	BudgetID         string    `json:"-"`
	SchemaVersion    string    `json:"-"`
	Interval         time.Time `json:"-"`
}

// Attributes billing sets on every notification.
const (
	AttrBillingAccountID = "billingAccountId"
	AttrBudgetID         = "budgetId"
	AttrSchemaVersion    = "schemaVersion"
	// SchemaVersion is the only notification format billing publishes.
	SchemaVersion = "1.0"
	// Currency is the cap's: a budget in any other currency cannot be compared with it.
	Currency = "USD"
)

// DecodeNotification checks a budget notification against its schema and attributes. Every
// error wraps events.ErrPoison: no redelivery can fix it.
func DecodeNotification(data []byte, attrs map[string]string) (Notification, error) {
	var n Notification
	if _, err := events.Validate(events.TopicBudgetAlerts, data); err != nil {
		return n, fmt.Errorf("%w: budget notification: %v", events.ErrPoison, err)
	}
	if err := json.Unmarshal(data, &n); err != nil {
		return n, fmt.Errorf("%w: budget notification: %v", events.ErrPoison, err)
	}
	n.BillingAccountID, n.BudgetID, n.SchemaVersion = attrs[AttrBillingAccountID], attrs[AttrBudgetID], attrs[AttrSchemaVersion]
	switch {
	case n.BillingAccountID == "" || n.BudgetID == "":
		return n, fmt.Errorf("%w: budget notification: attributes %s and %s are required", events.ErrPoison, AttrBillingAccountID, AttrBudgetID)
	case n.SchemaVersion != SchemaVersion:
		return n, fmt.Errorf("%w: budget notification: attribute %s %q, want %q", events.ErrPoison, AttrSchemaVersion, n.SchemaVersion, SchemaVersion)
	case n.CurrencyCode != Currency:
		return n, fmt.Errorf("%w: budget notification: currency %q, the cap is in %s", events.ErrPoison, n.CurrencyCode, Currency)
	case n.CostAmount < 0:
		return n, fmt.Errorf("%w: budget notification: costAmount %v is negative", events.ErrPoison, n.CostAmount)
	}
	t, err := time.Parse(time.RFC3339, n.CostIntervalStart)
	if err != nil {
		return n, fmt.Errorf("%w: budget notification: costIntervalStart: %v", events.ErrPoison, err)
	}
	n.Interval = t
	return n, nil
}

// SpendEvent is one AI call's reconciled usage (spend_events).
type SpendEvent struct {
	EventID      string
	Month        string
	MonthStart   time.Time
	EngagementID string  `json:"engagement_id"`
	AgentID      string  `json:"agent_id"`
	ExecutionID  string  `json:"execution_id"`
	Provider     string  `json:"provider"`
	Model        string  `json:"model"`
	CostUSD      float64 `json:"cost_usd"`
	ObservedAt   string  `json:"observed_at"`
}

// DecodeSpend checks a spend event against its schema. Every error wraps events.ErrPoison.
func DecodeSpend(data []byte) (SpendEvent, error) {
	env, err := events.Decode(events.TopicSpendEvents, data)
	if err != nil {
		return SpendEvent{}, fmt.Errorf("spend event: %w", err)
	}
	var sp SpendEvent
	if err := json.Unmarshal(env.Data, &sp); err != nil {
		return SpendEvent{}, fmt.Errorf("%w: spend event %s: data: %v", events.ErrPoison, env.EventID, err)
	}
	if sp.CostUSD < 0 {
		return SpendEvent{}, fmt.Errorf("%w: spend event %s: cost_usd %v is negative", events.ErrPoison, env.EventID, sp.CostUSD)
	}
	at, err := time.Parse(time.RFC3339, sp.ObservedAt)
	if err != nil {
		return SpendEvent{}, fmt.Errorf("%w: spend event %s: observed_at: %v", events.ErrPoison, env.EventID, err)
	}
	at = at.UTC()
	sp.EventID, sp.Month = env.EventID, Month(at)
	sp.MonthStart = time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
	return sp, nil
}
