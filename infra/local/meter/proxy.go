package meter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
)

// Proxy forwards every gRPC stream and every HTTP/1 request it gets to one emulator,
// counting what passes. gRPC clients reach it as they reach the emulator (h2c, the
// emulator variables); HTTP/1 clients (REST) too.
type Proxy struct {
	ln    net.Listener
	grpc  *grpc.Server
	http  *http.Server
	conn  *grpc.ClientConn
	h2    *chanListener
	h1    *chanListener
	wg    sync.WaitGroup
	close sync.Once
}

// Addr is the proxy's host:port, for FIRESTORE_EMULATOR_HOST or PUBSUB_EMULATOR_HOST.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and its connection to the emulator.
func (p *Proxy) Close() error {
	var err error
	p.close.Do(func() {
		err = p.ln.Close()
		p.grpc.Stop()
		p.http.Close()
		p.h2.Close()
		p.h1.Close()
		p.wg.Wait()
		if cerr := p.conn.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// observer sees one stream's messages, already framed, and how it ended. A nil observer
// counts nothing.
type observer interface {
	request(b []byte)
	response(b []byte)
	end(err error)
}

// observe returns the observer for a full gRPC method name, e.g.
// "/google.firestore.v1.Firestore/Commit".
type observe func(method string) observer

// startProxy listens on addr and forwards to upstream (host:port).
func startProxy(addr, upstream string, obs observe, rest http.Handler) (*Proxy, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	conn, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		return nil, fmt.Errorf("meter: dial %s: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("meter: listen %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, conn: conn, h2: newChanListener(ln.Addr()), h1: newChanListener(ln.Addr())}
	fwd := &forwarder{conn: conn, obs: obs}
	p.grpc = grpc.NewServer(grpc.UnknownServiceHandler(fwd.handle), grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(1<<30), grpc.MaxSendMsgSize(1<<30))
	if rest == nil {
		rest = reverseProxy(upstream)
	}
	p.http = &http.Server{Handler: rest, ReadHeaderTimeout: 10 * time.Second}
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.grpc.Serve(p.h2) }() //nolint:errcheck // ends at Close
	go func() { defer p.wg.Done(); p.http.Serve(p.h1) }() //nolint:errcheck // ends at Close
	go func() { defer p.wg.Done(); p.accept() }()
	return p, nil
}

// reverseProxy forwards HTTP/1 requests (REST) to upstream unchanged.
func reverseProxy(upstream string) *httputil.ReverseProxy {
	u := &url.URL{Scheme: "http", Host: upstream}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	return rp
}

// http2Preface starts every HTTP/2 connection, so every gRPC one.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// accept hands each connection to the gRPC server or the HTTP/1 server by its first bytes.
func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			br := bufio.NewReaderSize(c, 64)
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // best effort
			// One byte decides most connections ('P' starts only the preface and POST);
			// a short HTTP/1 request is never held waiting for 24 bytes.
			head, err := br.Peek(1)
			if err == nil && head[0] == 'P' {
				head, err = br.Peek(len(http2Preface))
			}
			c.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort
			if len(head) == 0 {
				c.Close()
				return
			}
			pc := &peekedConn{Conn: c, r: br}
			if err == nil && bytes.Equal(head, []byte(http2Preface)) {
				p.h2.put(pc)
				return
			}
			p.h1.put(pc)
		}()
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// chanListener is a net.Listener fed by accept.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(a net.Addr) *chanListener {
	return &chanListener{addr: a, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) put(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// rawCodec passes messages through as bytes: the proxy decodes only what it counts.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("meter: raw codec cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("meter: raw codec cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}

// Name is "proto" so that the content-type on the wire stays application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

// forwarder copies one stream both ways.
type forwarder struct {
	conn *grpc.ClientConn
	obs  observe
}

var bidi = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

func (f *forwarder) handle(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return errors.New("meter: no method on the stream")
	}
	o := f.obs(method)
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	md, _ := metadata.FromIncomingContext(ss.Context())
	out := metadata.MD{}
	for k, v := range md {
		// Transport headers are the client connection's own to set.
		if strings.HasPrefix(k, ":") || k == "content-type" || k == "user-agent" || k == "te" {
			continue
		}
		out[k] = v
	}
	ctx = metadata.NewOutgoingContext(ctx, out)
	cs, err := f.conn.NewStream(ctx, bidi, method)
	if err != nil {
		if o != nil {
			o.end(err)
		}
		return err
	}
	// Client → emulator.
	upErr := make(chan error, 1)
	go func() {
		for {
			var b []byte
			if err := ss.RecvMsg(&b); err != nil {
				if errors.Is(err, io.EOF) {
					upErr <- cs.CloseSend()
					return
				}
				cancel()
				upErr <- err
				return
			}
			if o != nil {
				o.request(b)
			}
			if err := cs.SendMsg(&b); err != nil {
				// The emulator ended the stream; RecvMsg below reports why.
				upErr <- nil
				return
			}
		}
	}()
	// Emulator → client.
	if hdr, err := cs.Header(); err == nil && len(hdr) > 0 {
		if err := ss.SendHeader(hdr); err != nil {
			cancel()
			return err
		}
	}
	for {
		var b []byte
		err := cs.RecvMsg(&b)
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if o != nil {
				o.end(err)
			}
			return err
		}
		if o != nil {
			o.response(b)
		}
		if err := ss.SendMsg(&b); err != nil {
			cancel()
			if o != nil {
				o.end(err)
			}
			return err
		}
	}
}
