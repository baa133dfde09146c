package stdlib

import (
	"os"
	"strings"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

// The Pub/Sub connector publishes through the Pub/Sub emulator named by
// PUBSUB_EMULATOR_HOST, as the platform's local stack runs it.
func init() {
	reg("googleapis.pubsub.v1.projects.topics.publish", 2, func(c Ctx, a []any) (any, error) {
		topic, err := str("googleapis.pubsub.v1.projects.topics.publish", arg(a, 0))
		if err != nil {
			return nil, err
		}
		host := os.Getenv("PUBSUB_EMULATOR_HOST")
		if host == "" {
			return nil, lang.Errorf(lang.TagConnFailed, "googleapis.pubsub.v1.projects.topics.publish: PUBSUB_EMULATOR_HOST is not set")
		}
		if !strings.HasPrefix(host, "http") {
			host = "http://" + host
		}
		res, err := doHTTP(c, "POST", host+"/v1/"+topic+":publish", nil, arg(a, 1), nil, nil)
		if err != nil {
			return nil, err
		}
		return res.(map[string]any)["body"], nil
	}, "topic", "body", "connector_params")
}
