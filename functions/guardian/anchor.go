package guardian

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

// AnchorStore keeps the signed anchors of the audit chain write-once, outside the reach of
// whoever writes the chain.
type AnchorStore interface {
	// Latest returns the newest anchor's document and name, or a nil document when there is
	// none yet.
	Latest(ctx context.Context) (doc []byte, name string, err error)
	// Create stores doc as a new object; it never replaces one (ErrAnchorExists).
	Create(ctx context.Context, name string, doc []byte) error
}

// ErrAnchorExists is returned by Create for a name already taken.
var ErrAnchorExists = errors.New("guardian: anchor already exists")

// AnchorPrefix is where anchors live in the bucket.
const AnchorPrefix = "anchors/"

// AnchorName is the object name of the anchor made at t: the time counted down from the
// largest instant, so that the newest anchor sorts first and Latest lists one object
// however many were written.
func AnchorName(t time.Time) string {
	return fmt.Sprintf("%s%019d-%s.json", AnchorPrefix, math.MaxInt64-t.UnixNano(), t.UTC().Format("20060102T150405Z"))
}

// GCSAnchors is the AnchorStore on a Cloud Storage bucket. Objects are created with the
// precondition "does not exist", and the bucket's retention policy (Terraform) keeps anyone,
// the guardian included, from deleting or replacing one.
type GCSAnchors struct {
	Bucket *storage.BucketHandle
}

// Latest lists the first object under AnchorPrefix (one list call of one result) and reads it.
func (g GCSAnchors) Latest(ctx context.Context) ([]byte, string, error) {
	it := g.Bucket.Objects(ctx, &storage.Query{Prefix: AnchorPrefix})
	it.PageInfo().MaxSize = 1
	attrs, err := it.Next()
	if errors.Is(err, iterator.Done) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("guardian: list anchors: %w", err)
	}
	r, err := g.Bucket.Object(attrs.Name).NewReader(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("guardian: read anchor %s: %w", attrs.Name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, "", fmt.Errorf("guardian: read anchor %s: %w", attrs.Name, err)
	}
	return b, attrs.Name, nil
}

// Create writes doc under name if no object has that name.
func (g GCSAnchors) Create(ctx context.Context, name string, doc []byte) error {
	w := g.Bucket.Object(name).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/json"
	w.ChunkSize = 0 // one request: an anchor is small
	if _, err := w.Write(doc); err != nil {
		w.Close()
		return fmt.Errorf("guardian: write anchor %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
			return fmt.Errorf("%w: %s", ErrAnchorExists, name)
		}
		return fmt.Errorf("guardian: write anchor %s: %w", name, err)
	}
	return nil
}
