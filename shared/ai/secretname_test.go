package ai_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/secrets"
)

var secretID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func TestSecretNameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		eng, agent, cred string
		want             string
	}{
		{"platform", "genesis", ai.CredGroq, "platform-genesis-groq_5Fapi_5Fkey"},
		{"eng-1", "systems_architect", ai.CredOpenAI, "eng_2D1-systems_5Farchitect-openai_5Fapi_5Fkey"},
		{"a/b", "c-d", "e_f", "a_2Fb-c_2Dd-e_5Ff"},
		{"é", "日本", "x y", "_C3_A9-_E6_97_A5_E6_9C_AC-x_20y"},
	} {
		got, err := ai.SecretName(tc.eng, tc.agent, tc.cred)
		if err != nil || got != tc.want || !secretID.MatchString(got) {
			t.Fatalf("SecretName(%q, %q, %q) = %q, %v; want %q", tc.eng, tc.agent, tc.cred, got, err, tc.want)
		}
		e, a, c, err := ai.ParseSecretName(got)
		if err != nil || e != tc.eng || a != tc.agent || c != tc.cred {
			t.Fatalf("ParseSecretName(%q) = %q, %q, %q, %v", got, e, a, c, err)
		}
	}
}

// Triples that differ only in where a separator-like character sits never share a name.
func TestSecretNameDistinct(t *testing.T) {
	parts := []string{"a", "b", "a-b", "a_b", "a/b", "a_2Db", "a-", "-b", "_", "-", "/", "a_2D", "2D"}
	seen := map[string][3]string{}
	for _, e := range parts {
		for _, a := range parts {
			for _, c := range parts {
				name, err := ai.SecretName(e, a, c)
				if err != nil {
					t.Fatal(err)
				}
				if prev, dup := seen[name]; dup {
					t.Fatalf("%q names both %v and %v", name, prev, [3]string{e, a, c})
				}
				seen[name] = [3]string{e, a, c}
				if !secretID.MatchString(name) {
					t.Fatalf("%q is not a secret id", name)
				}
			}
		}
	}
}

func TestSecretNameRefused(t *testing.T) {
	for _, tc := range []struct{ eng, agent, cred string }{
		{"", "genesis", ai.CredGroq},
		{"platform", "", ai.CredGroq},
		{"platform", "genesis", ""},
		{strings.Repeat("x", 250), "genesis", ai.CredGroq},
	} {
		if _, err := ai.SecretName(tc.eng, tc.agent, tc.cred); !errors.Is(err, ai.ErrBadSecretName) {
			t.Fatalf("SecretName(%.20q, %q, %q): %v", tc.eng, tc.agent, tc.cred, err)
		}
	}
	for _, name := range []string{"a-b", "a-b-c-d", "a--c", "a_2-b-c", "a_2d-b-c", "a_41-b-c", "a_ZZ-b-c", "a.b-c-d"} {
		if _, _, _, err := ai.ParseSecretName(name); !errors.Is(err, ai.ErrBadSecretName) {
			t.Fatalf("ParseSecretName(%q): %v", name, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		wantNil bool
		wantErr bool
	}{
		{map[string]string{}, true, false},
		{map[string]string{ai.EnvGroqBaseURL: "ftp://x"}, true, true},
		{map[string]string{ai.EnvOpenAIBaseURL: "http://127.0.0.1:1/v1", ai.EnvTimeout: "soon"}, true, true},
		{map[string]string{ai.EnvOpenAIBaseURL: "http://127.0.0.1:1/v1", ai.EnvTimeout: "-1s"}, true, true},
	} {
		r, err := ai.FromEnv(config.FromMap(tc.env), secrets.Dir(t.TempDir()), nil, nil)
		if (r == nil) != tc.wantNil || (err != nil) != tc.wantErr {
			t.Fatalf("FromEnv(%v) = %v, %v", tc.env, r, err)
		}
	}
}

func ExampleSecretName() {
	name, _ := ai.SecretName("eng-1", "genesis", ai.CredGroq)
	fmt.Println(name)
	// Output: eng_2D1-genesis-groq_5Fapi_5Fkey
}
