package emulators

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/shared/schema"
)

// PushEndpoint returns the URL a push subscription of topic uses for a function served at
// base: functions-framework-go reads the topic from the path, as on Cloud Functions.
func PushEndpoint(base, project, topic string) string {
	return strings.TrimRight(base, "/") + "/projects/" + project + "/topics/" + topic
}

// DeadLetterHold is the pull subscription created on each dead-letter topic, so that what is
// dead-lettered stays readable (a topic without subscriptions keeps nothing).
func DeadLetterHold(sub infraspec.Subscription) string { return sub.DeadLetterTopic() + "-hold" }

// Provision creates, in project, every topic of spec (with its Avro schema attached, JSON
// encoding), every subscription with its dead-letter topic and policy, and a hold
// subscription on each dead-letter topic. pushBase maps a function name to the base URL it
// is served at; a subscription whose function has no URL is created as a pull subscription.
// Resources that already exist are left as they are.
func Provision(ctx context.Context, client *pubsub.Client, spec *infraspec.Spec, pushBase map[string]string) error {
	project := client.Project()
	schemas, err := newSchemaClient(ctx)
	if err != nil {
		return err
	}
	defer schemas.Close()
	for _, t := range spec.Topics {
		topic := &pubsubpb.Topic{Name: topicName(project, t.Name)}
		if t.SchemaAttached() {
			id := strings.TrimSuffix(path.Base(t.Schema), ".avsc")
			def, ok := schema.Default().Definition(id)
			if !ok {
				return fmt.Errorf("emulators: topic %s: schema %s not embedded", t.Name, t.Schema)
			}
			_, err := schemas.CreateSchema(ctx, &pubsubpb.CreateSchemaRequest{
				Parent:   "projects/" + project,
				SchemaId: id,
				Schema:   &pubsubpb.Schema{Type: pubsubpb.Schema_AVRO, Definition: def},
			})
			if err != nil && status.Code(err) != codes.AlreadyExists {
				return fmt.Errorf("emulators: create schema %s: %w", id, err)
			}
			topic.SchemaSettings = &pubsubpb.SchemaSettings{Schema: "projects/" + project + "/schemas/" + id, Encoding: pubsubpb.Encoding_JSON}
		}
		if err := createTopic(ctx, client, topic); err != nil {
			return err
		}
	}
	retention, err := time.ParseDuration(spec.DeadLetter.Retention)
	if err != nil {
		return fmt.Errorf("emulators: dead_letter.retention: %w", err)
	}
	minBackoff, err := time.ParseDuration(spec.DeadLetter.MinimumBackoff)
	if err != nil {
		return fmt.Errorf("emulators: dead_letter.minimum_backoff: %w", err)
	}
	maxBackoff, err := time.ParseDuration(spec.DeadLetter.MaximumBackoff)
	if err != nil {
		return fmt.Errorf("emulators: dead_letter.maximum_backoff: %w", err)
	}
	for _, s := range spec.Subscriptions {
		dlq := topicName(project, s.DeadLetterTopic())
		if err := createTopic(ctx, client, &pubsubpb.Topic{Name: dlq, MessageRetentionDuration: durationpb.New(retention)}); err != nil {
			return err
		}
		if err := createSubscription(ctx, client, &pubsubpb.Subscription{
			Name:                     subName(project, DeadLetterHold(s)),
			Topic:                    dlq,
			AckDeadlineSeconds:       60,
			MessageRetentionDuration: durationpb.New(7 * 24 * time.Hour), // Pub/Sub's maximum
		}); err != nil {
			return err
		}
		sub := &pubsubpb.Subscription{
			Name:                  subName(project, s.Name),
			Topic:                 topicName(project, s.Topic),
			AckDeadlineSeconds:    int32(s.AckDeadlineSeconds),
			EnableMessageOrdering: s.MessageOrdering,
			DeadLetterPolicy:      &pubsubpb.DeadLetterPolicy{DeadLetterTopic: dlq, MaxDeliveryAttempts: int32(spec.DeadLetter.MaxDeliveryAttempts)},
			RetryPolicy:           &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(minBackoff), MaximumBackoff: durationpb.New(maxBackoff)},
		}
		if base := pushBase[s.PushFunction]; base != "" {
			sub.PushConfig = &pubsubpb.PushConfig{PushEndpoint: PushEndpoint(base, project, s.Topic)}
		}
		if err := createSubscription(ctx, client, sub); err != nil {
			return err
		}
	}
	return nil
}

func topicName(project, topic string) string { return "projects/" + project + "/topics/" + topic }
func subName(project, sub string) string     { return "projects/" + project + "/subscriptions/" + sub }

func createTopic(ctx context.Context, c *pubsub.Client, t *pubsubpb.Topic) error {
	if _, err := c.TopicAdminClient.CreateTopic(ctx, t); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("emulators: create topic %s: %w", t.Name, err)
	}
	return nil
}

func createSubscription(ctx context.Context, c *pubsub.Client, s *pubsubpb.Subscription) error {
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, s); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("emulators: create subscription %s: %w", s.Name, err)
	}
	return nil
}

// newSchemaClient dials the schema service; the pubsub.Client does not carry one, and the
// emulator needs an insecure connection.
func newSchemaClient(ctx context.Context) (*vkit.SchemaClient, error) {
	var opts []option.ClientOption
	if host := os.Getenv("PUBSUB_EMULATOR_HOST"); host != "" {
		opts = append(opts, option.WithEndpoint(host), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := vkit.NewSchemaClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("emulators: schema client: %w", err)
	}
	return c, nil
}
