// Package notification is the record of one approval's notification cascade, which the
// notifier writes (notification_cascades/{approval_id}) and the gateway reads to deliver an
// acknowledgement on the cascade's callback. See docs/notifier.md.
package notification

// Collection holds one Cascade per approval id.
const Collection = "notification_cascades"

// Cascade states.
const (
	StateStarting     = "starting"     // claimed by a push; the execution is being started
	StateRunning      = "running"      // the execution is sending and waiting
	StateAcknowledged = "acknowledged" // the gateway delivered an acknowledgement
	StateDecided      = "decided"      // a decision cancelled it (or came first: none is started)
)

// Cascade is the Firestore document of one approval's cascade.
type Cascade struct {
	ApprovalID   string `firestore:"approval_id" json:"approval_id"`
	EngagementID string `firestore:"engagement_id" json:"engagement_id"`
	State        string `firestore:"state" json:"state"`
	// Execution is the notification_cascade execution's name, once started.
	Execution string `firestore:"execution" json:"execution,omitempty"`
	// CallbackURL is the execution's acknowledgement callback, recorded at its first send.
	CallbackURL string `firestore:"callback_url" json:"callback_url,omitempty"`
	// Sent are the steps delivered, by step number ("1", "2", ...): a retried send of a step
	// already delivered sends nothing again.
	Sent           map[string]string `firestore:"sent" json:"sent,omitempty"`
	Decision       string            `firestore:"decision" json:"decision,omitempty"`
	AcknowledgedBy string            `firestore:"acknowledged_by" json:"acknowledged_by,omitempty"`
	UpdatedAt      string            `firestore:"updated_at" json:"updated_at"`
}
