package cli

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// approval is one approval as GET /v1/approvals lists it.
type approval struct {
	ApprovalID string `json:"approval_id"`
	RequestID  string `json:"request_id"`
	Kind       string `json:"kind"`
	Type       string `json:"type"`
	Deadline   string `json:"deadline"`
	SeedID     string `json:"seed_id"`
}

func listApprovals(ctx context.Context, c *client, state, engagement string) ([]approval, []byte, error) {
	q := url.Values{"state": {state}}
	if engagement != "" {
		q.Set("engagement", engagement)
	}
	var out struct {
		Approvals []approval `json:"approvals"`
	}
	raw, err := c.getJSON(ctx, "/v1/approvals?"+q.Encode(), &out)
	return out.Approvals, raw, err
}

func newApprovals(a *app) *cobra.Command {
	var state, engagement string
	list := &cobra.Command{
		Use:   "list",
		Short: "List approvals and veto windows, nearest deadline first",
		Long: `list shows the approvals of your engagement (or --engagement, for roles that reach every
engagement) in one state, pending by default: blocking approvals wait for approve or deny, veto
windows for a veto (or for their deadline, which approves them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, raw, err := listApprovals(cmd.Context(), c, state, engagement)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, raw)
			}
			now := time.Now()
			rows := make([][]string, 0, len(list))
			for _, ap := range list {
				rows = append(rows, []string{ap.ApprovalID, ap.RequestID, ap.Kind, ap.Type, ap.Deadline, orDash(left(ap.Deadline, now)), orDash(ap.SeedID)})
			}
			return table(a.stdout, []string{"APPROVAL", "REQUEST", "KIND", "TYPE", "DEADLINE", "LEFT", "SEED"}, rows)
		},
	}
	list.Flags().StringVar(&state, "state", "pending", "pending, claimed, decided, expired or implicit")
	list.Flags().StringVar(&engagement, "engagement", "", "another engagement (roles that reach every engagement)")
	return group("approvals", "The Governor's approvals and veto windows", list,
		decideCommand(a, "approve", "Approve a blocking approval"),
		decideCommand(a, "deny", "Deny a blocking approval"),
		decideCommand(a, "veto", "Veto an agent in its open veto window, undoing its creation"))
}

// decideCommand is approve, deny or veto: one decision, as POST /v1/approvals/{id}:decide
// takes it. The answer comes once the workflow has closed the approval (or says the decision
// was delivered and will be).
func decideCommand(a *app, decision, short string) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     decision + " ID --reason R",
		Short:   short,
		Example: "  waooaw approvals " + decision + " apr-123 --reason \"checked with the customer\"",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason must say why")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out struct {
				ApprovalID string `json:"approval_id"`
				Decision   string `json:"decision"`
				DecidedBy  string `json:"decided_by"`
				Status     string `json:"status"`
			}
			raw, code, err := c.postJSON(cmd.Context(), "/v1/approvals/"+url.PathEscape(args[0])+":decide", nil,
				map[string]string{"decision": decision, "reason": reason}, &out)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, raw)
			}
			state := "closed by the workflow"
			if code == http.StatusAccepted {
				state = "delivered; the workflow will close it"
			}
			return fields(a.stdout, "approval", out.ApprovalID, "decision", out.Decision, "by", out.DecidedBy, "state", state)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return completeApprovals(a, cmd, args, decision)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, as the audit log will keep it")
	markRequired(c, "reason")
	return c
}

// completeApprovals offers the pending approvals that take decision, when the gateway
// answers; completion never fails loudly.
func completeApprovals(a *app, cmd *cobra.Command, args []string, decision string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	list, _, err := listApprovals(ctx, c, "pending", "")
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, ap := range list {
		veto := ap.Kind == "veto_window"
		if veto == (decision == "veto") {
			out = append(out, ap.ApprovalID+"\t"+ap.Type+" for "+ap.RequestID)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
