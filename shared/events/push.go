package events

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Push is the body Pub/Sub posts to a push endpoint (wrapped delivery): the message with
// its data base64-encoded (encoding/json decodes it into []byte).
type Push struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime string            `json:"publishTime"`
		OrderingKey string            `json:"orderingKey"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// ReadPush reads a push body of at most maxBytes. Its errors wrap ErrPoison: no redelivery
// makes a body that is too long or not a push readable. What was decoded before an error is
// returned too, for the caller's log.
func ReadPush(r *http.Request, maxBytes int64) (Push, error) {
	var p Push
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	if err != nil {
		return p, fmt.Errorf("%w: body: %v", ErrPoison, err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: not a Pub/Sub push: %v", ErrPoison, err)
	}
	return p, nil
}
