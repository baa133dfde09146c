package cli

import (
	"github.com/spf13/cobra"
)

func newEngagements(a *app) *cobra.Command {
	var governor string
	create := &cobra.Command{
		Use:     "create ID --governor SUBJECT",
		Short:   "Set an engagement's Governor (admin)",
		Example: "  waooaw engagements create eng-1 --governor gov-1",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var out struct {
				EngagementID string `json:"engagement_id"`
				Governor     string `json:"governor"`
				AssignedAt   string `json:"assigned_at"`
			}
			raw, code, err := c.postJSON(cmd.Context(), "/v1/engagements", nil,
				map[string]string{"engagement_id": args[0], "governor": governor}, &out)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, raw)
			}
			what := "set"
			if code == 200 {
				what = "already so"
			}
			return fields(a.stdout, "engagement", out.EngagementID, "governor", out.Governor+" ("+what+")", "assigned at", out.AssignedAt)
		},
	}
	create.Flags().StringVar(&governor, "governor", "", "the subject who governs the engagement")
	markRequired(create, "governor")
	return group("engagements", "Engagements and their Governors", create)
}
