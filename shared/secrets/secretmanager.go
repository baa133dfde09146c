package secrets

import (
	"context"
	"fmt"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SecretManager reads the latest version of secrets of one project from Google Secret Manager.
type SecretManager struct {
	client  *secretmanager.Client
	project string
}

// NewSecretManager connects to Secret Manager; Close releases the connection.
func NewSecretManager(ctx context.Context, project string, opts ...option.ClientOption) (*SecretManager, error) {
	if project == "" {
		return nil, fmt.Errorf("secrets: Secret Manager needs a project id")
	}
	c, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("secrets: secretmanager.NewClient: %w", err)
	}
	return &SecretManager{client: c, project: project}, nil
}

// VersionName is the resource name of the latest version of a secret.
func VersionName(project, name string) string {
	return fmt.Sprintf("projects/%s/secrets/%s/versions/latest", project, name)
}

// Get implements Source: the latest version, trimmed and checked as Dir's values are.
func (s *SecretManager) Get(ctx context.Context, name string) ([]byte, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: VersionName(s.project, name)})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("secrets: %s in project %s: %w", name, s.project, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: AccessSecretVersion %s: %w", name, err)
	}
	return value(name, resp.GetPayload().GetData())
}

// Close closes the client.
func (s *SecretManager) Close() error { return s.client.Close() }

// Open picks the source the platform's configuration asks for: files in dir when dir is set
// (the local stack), else Secret Manager in project. The returned close func is never nil.
func Open(ctx context.Context, dir, project string) (Source, func() error, error) {
	if dir != "" {
		return Dir(dir), func() error { return nil }, nil
	}
	sm, err := NewSecretManager(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	return sm, sm.Close, nil
}
