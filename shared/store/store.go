// Package store opens the Firestore client every function uses and names the collections, so
// that production and the emulator are reached by the same code path: the client library
// switches to the emulator when FIRESTORE_EMULATOR_HOST is set.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"cloud.google.com/go/firestore"
)

// ErrNoProject is returned when no project id is configured and none can be detected.
var ErrNoProject = errors.New("store: no project id (set GOOGLE_CLOUD_PROJECT)")

// Collection names. They live here so that tools reading Firestore (verification, exports)
// and the writers agree on one layout.
const (
	// AuditStreams holds one head document per audit stream; entries and the event-id
	// index are its subcollections.
	AuditStreams = "audit_streams"
	// AuditEntries is the subcollection of a stream holding its entries by zero-padded seq.
	AuditEntries = "entries"
	// AuditEventIndex is the subcollection of a stream mapping an event id to its seq.
	AuditEventIndex = "event_ids"
)

// ProjectID returns the configured project: GOOGLE_CLOUD_PROJECT, then GCLOUD_PROJECT (set
// by older runtimes). "" means the client library should detect it from the metadata server.
func ProjectID() string {
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// EnvAuditDatabase names the Firestore database holding the audit log. Deployed, it is a
// database of its own, so that only the auditor's identity may write it; unset, the log
// shares the (default) database, as it does on the local stack.
const EnvAuditDatabase = "WAOOAW_AUDIT_DATABASE"

// AuditDatabase is the configured audit log database, firestore.DefaultDatabaseID when unset.
func AuditDatabase() string {
	if v := os.Getenv(EnvAuditDatabase); v != "" {
		return v
	}
	return firestore.DefaultDatabaseID
}

// NewAuditClient opens a Firestore client on the audit log's database (AuditDatabase), for
// the configured project as NewClient finds it.
func NewAuditClient(ctx context.Context) (*firestore.Client, error) {
	return newClient(ctx, AuditDatabase())
}

// NewClient opens a Firestore client for the configured project. On Cloud Functions the
// project is detected when the variable is unset; against the emulator it must be set,
// because there is no metadata server to ask.
func NewClient(ctx context.Context) (*firestore.Client, error) {
	return newClient(ctx, firestore.DefaultDatabaseID)
}

func newClient(ctx context.Context, database string) (*firestore.Client, error) {
	project := ProjectID()
	if project == "" {
		if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" {
			return nil, ErrNoProject
		}
		project = firestore.DetectProjectID
	}
	if database == firestore.DefaultDatabaseID {
		c, err := firestore.NewClient(ctx, project)
		if err != nil {
			return nil, fmt.Errorf("store: firestore.NewClient(%s): %w", project, err)
		}
		return c, nil
	}
	// NewClientWithDatabase refuses the default database by name, hence the two calls.
	c, err := firestore.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		return nil, fmt.Errorf("store: firestore.NewClientWithDatabase(%s, %s): %w", project, database, err)
	}
	return c, nil
}
