package notifier_test

import (
	"reflect"
	"strings"
	"testing"

	"waooaw.dev/governance/functions/notifier"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/rules"
)

func TestStepsFromTheRulesTable(t *testing.T) {
	set, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"deployment", "financial", "constitutional"} {
		got, err := notifier.Steps(set, typ)
		if err != nil {
			t.Fatal(err)
		}
		want := []notifier.Step{{Channel: "webhook", AfterSeconds: 0, Rule: "CASCADE-FIRST"},
			{Channel: "email", AfterSeconds: 300, Rule: "CASCADE-SECOND"}, {Channel: "webhook_2", AfterSeconds: 900, Rule: "CASCADE-THIRD"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: steps %+v, want %+v", typ, got, want)
		}
	}
	names, err := notifier.ChannelNames(set)
	if err != nil || strings.Join(names, ",") != "webhook,email,webhook_2" {
		t.Errorf("channel names %v (%v), want webhook,email,webhook_2", names, err)
	}
}

func TestConfigFrom(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "WAOOAW_REGION": "asia-south1",
		"WAOOAW_CHANNEL_WEBHOOK": "https://hooks.example/T/1", "WAOOAW_CHANNEL_EMAIL": "smtp://u@mail.example:587?from=a@example&to=b@example,c@example"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"https webhook and smtp", base, ""},
		{"a loopback http sink", with("WAOOAW_CHANNEL_WEBHOOK", "http://127.0.0.1:9/hooks/x"), ""},
		{"plain http elsewhere", with("WAOOAW_CHANNEL_WEBHOOK", "http://hooks.example/x"), "WAOOAW_CHANNEL_WEBHOOK"},
		{"smtp without recipients", with("WAOOAW_CHANNEL_EMAIL", "smtp://mail.example:25?from=a@example"), "WAOOAW_CHANNEL_EMAIL"},
		{"a channel unbound", with("WAOOAW_CHANNEL_EMAIL", ""), "WAOOAW_CHANNEL_EMAIL"},
		{"no workflow", with("WAOOAW_REGION", ""), "WAOOAW_NOTIFICATION_WORKFLOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := notifier.ConfigFrom(config.FromMap(tc.env), []string{"webhook", "email"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Workflow != "projects/p/locations/asia-south1/workflows/notification_cascade" {
				t.Errorf("workflow %q", c.Workflow)
			}
			if c.Channels["email"].Secret != "notify-email" || c.Channels["webhook"].URL == nil {
				t.Errorf("channels %+v", c.Channels)
			}
			ch, err := c.Channels["email"].Open(nil)
			if e, ok := ch.(*notifier.Email); err != nil || !ok || e.User != "u" || len(e.To) != 2 || e.Password == nil {
				t.Errorf("email channel %+v (%v): want user u, two recipients and a password", ch, err)
			}
		})
	}
}
