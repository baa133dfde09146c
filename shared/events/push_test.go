package events

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadPush(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		max      int64
		wantID   string
		poisoned bool
	}{
		{"a push", `{"message":{"data":"e30=","messageId":"m1","orderingKey":"k"},"subscription":"s","deliveryAttempt":2}`, 1 << 10, "m1", false},
		{"not json", `not a push`, 1 << 10, "", true},
		{"over the bound", `{"message":{"messageId":"m2"}}`, 8, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ReadPush(httptest.NewRequest("POST", "/", strings.NewReader(tt.body)), tt.max)
			if tt.poisoned != errors.Is(err, ErrPoison) {
				t.Fatalf("err = %v, poisoned want %v", err, tt.poisoned)
			}
			if p.Message.MessageID != tt.wantID {
				t.Fatalf("message id %q, want %q", p.Message.MessageID, tt.wantID)
			}
			if !tt.poisoned && (string(p.Message.Data) != "{}" || p.DeliveryAttempt != 2 || p.Message.OrderingKey != "k") {
				t.Fatalf("push = %+v", p)
			}
		})
	}
}
