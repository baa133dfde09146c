package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"
)

// Pub/Sub bills a message's data, its attributes' keys and values, 20 bytes of timestamp,
// its message id and optional fields (the ordering key), with at least 1,000 bytes for
// each publish, pull or push request.
const (
	pubsubTimestampBytes = 20
	pubsubMinBilled      = 1000
)

// PubSub starts a proxy on addr in front of the Pub/Sub emulator at upstream (host:port)
// that counts messages and bytes published, delivered by pull and acknowledged. REST
// publishes (the Workflows emulator's connector) are counted as gRPC ones.
func (m *Meter) PubSub(addr, upstream string) (*Proxy, error) {
	rest := &pubsubREST{m: m, upstream: upstream, rp: reverseProxy(upstream)}
	return startProxy(addr, upstream, func(method string) observer {
		i := strings.LastIndexByte(method, '/')
		if !strings.HasPrefix(method, "/google.pubsub.v1.") || i < 0 {
			return nil
		}
		name := method[i+1:]
		return &psStream{m: m, method: name, d: map[string]int64{"pubsub.calls." + name: 1}}
	}, rest)
}

// messageBytes is what a message weighs before the service adds its id and time.
func messageBytes(data []byte, attrs map[string]string, orderingKey string) int64 {
	n := len(data) + len(orderingKey)
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return int64(n)
}

func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

type psStream struct {
	m      *Meter
	method string
	d      map[string]int64

	topic string
	sizes []int64 // publish: each message's bytes, until the ids come back
	sub   string  // pull: the subscription
}

func (s *psStream) request(b []byte) {
	switch s.method {
	case "Publish":
		var r pubsubpb.PublishRequest
		if proto.Unmarshal(b, &r) == nil {
			s.topic = lastSegment(r.GetTopic())
			for _, msg := range r.GetMessages() {
				s.sizes = append(s.sizes, messageBytes(msg.GetData(), msg.GetAttributes(), msg.GetOrderingKey()))
			}
		}
	case "Pull":
		var r pubsubpb.PullRequest
		if proto.Unmarshal(b, &r) == nil {
			s.sub = lastSegment(r.GetSubscription())
		}
	case "StreamingPull":
		var r pubsubpb.StreamingPullRequest
		if proto.Unmarshal(b, &r) == nil {
			if r.GetSubscription() != "" {
				s.sub = lastSegment(r.GetSubscription())
			}
			if n := int64(len(r.GetAckIds())); n > 0 {
				s.m.addMap(map[string]int64{"pubsub.acks": n})
			}
		}
	case "Acknowledge":
		var r pubsubpb.AcknowledgeRequest
		if proto.Unmarshal(b, &r) == nil {
			s.d["pubsub.acks"] += int64(len(r.GetAckIds()))
		}
	}
}

func (s *psStream) response(b []byte) {
	switch s.method {
	case "Publish":
		var r pubsubpb.PublishResponse
		if proto.Unmarshal(b, &r) == nil {
			s.m.addMap(published(s.topic, s.sizes, r.GetMessageIds()))
		}
	case "Pull":
		var r pubsubpb.PullResponse
		if proto.Unmarshal(b, &r) == nil {
			s.m.addMap(delivered(s.sub, "pulled", r.GetReceivedMessages()))
		}
	case "StreamingPull":
		var r pubsubpb.StreamingPullResponse
		if proto.Unmarshal(b, &r) == nil {
			s.m.addMap(delivered(s.sub, "pulled", r.GetReceivedMessages()))
		}
	}
}

func (s *psStream) end(err error) {
	if err != nil {
		s.d["pubsub.errors."+s.method]++
	}
	s.m.addMap(s.d)
}

// published counts one answered publish request.
func published(topic string, sizes []int64, ids []string) map[string]int64 {
	var raw, billed int64
	for i, n := range sizes {
		raw += n
		billed += n + pubsubTimestampBytes
		if i < len(ids) {
			billed += int64(len(ids[i]))
		}
	}
	billed = max(billed, pubsubMinBilled)
	t := "pubsub.topics." + topic + "."
	msgs := int64(len(sizes))
	return map[string]int64{
		"pubsub.publish.requests": 1, "pubsub.publish.messages": msgs,
		"pubsub.publish.bytes": raw, "pubsub.publish.billed_bytes": billed,
		t + "messages": msgs, t + "bytes": raw, t + "billed_bytes": billed,
	}
}

// delivered counts one pull response (or one push) carrying messages.
func delivered(sub, how string, msgs []*pubsubpb.ReceivedMessage) map[string]int64 {
	if len(msgs) == 0 {
		return nil
	}
	var billed int64
	for _, rm := range msgs {
		msg := rm.GetMessage()
		billed += messageBytes(msg.GetData(), msg.GetAttributes(), msg.GetOrderingKey()) +
			pubsubTimestampBytes + int64(len(msg.GetMessageId()))
	}
	billed = max(billed, pubsubMinBilled)
	n := int64(len(msgs))
	s := "pubsub.subscriptions." + sub + "."
	return map[string]int64{
		"pubsub.deliver." + how: n, "pubsub.deliver.billed_bytes": billed,
		s + "messages": n, s + "billed_bytes": billed,
	}
}

// pubsubREST counts REST publishes and forwards every HTTP/1 request.
type pubsubREST struct {
	m        *Meter
	upstream string
	rp       *httputil.ReverseProxy
}

type restMessage struct {
	Data        []byte            `json:"data"`
	Attributes  map[string]string `json:"attributes"`
	OrderingKey string            `json:"orderingKey"`
}

func (h *pubsubREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, ":publish") {
		h.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "meter: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &recorder{ResponseWriter: w}
	h.rp.ServeHTTP(rec, r)
	h.m.addMap(map[string]int64{"pubsub.calls.Publish": 1})
	if rec.status != http.StatusOK {
		h.m.addMap(map[string]int64{"pubsub.errors.Publish": 1})
		return
	}
	var req struct {
		Messages []restMessage `json:"messages"`
	}
	var resp struct {
		MessageIDs []string `json:"messageIds"`
	}
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(rec.body.Bytes(), &resp) != nil {
		return
	}
	sizes := make([]int64, len(req.Messages))
	for i, msg := range req.Messages {
		sizes[i] = messageBytes(msg.Data, msg.Attributes, msg.OrderingKey)
	}
	topic := strings.TrimSuffix(lastSegment(r.URL.Path), ":publish")
	h.m.addMap(published(topic, sizes, resp.MessageIDs))
}

// recorder keeps the status and body of a response while writing it through.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets the reverse proxy flush through the wrapper.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
