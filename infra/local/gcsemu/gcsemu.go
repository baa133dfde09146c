// Package gcsemu is the local stack's Cloud Storage: the part of Google's JSON API (and the
// XML API's object read) that cloud.google.com/go/storage speaks when STORAGE_EMULATOR_HOST
// names it, kept in a directory so objects outlive a restart. Google offers no Cloud Storage
// emulator. What it honours, because the platform relies on it:
//
//   - generation preconditions on upload (ifGenerationMatch, 0 meaning "does not exist"):
//     a failed one is 412 conditionNotMet, as Cloud Storage answers;
//   - a bucket's retention policy: an object younger than the period can be neither deleted
//     nor replaced (403 retentionPolicyNotMet).
//
// Served: buckets insert and get; objects insert (uploadType=media and multipart), get
// (metadata, alt=media), list (prefix, delimiter, startOffset, endOffset, maxResults,
// pageToken) and delete; GET /{bucket}/{object} (the client's default read). Anything else
// answers 501.
package gcsemu

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server serves the buckets kept under a directory.
type Server struct {
	dir string
	// Now is the clock retention periods are measured on (time.Now by default).
	Now func() time.Time

	mu sync.Mutex
}

// New returns a server keeping its buckets under dir (created if missing).
func New(dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gcsemu: %w", err)
	}
	return &Server{dir: dir, Now: time.Now}, nil
}

// Running is a server listening on loopback.
type Running struct {
	*Server
	srv *http.Server
	l   net.Listener
}

// Start serves a directory's buckets on addr ("127.0.0.1:0": a free port).
func Start(addr, dir string) (*Running, error) {
	s, err := New(dir)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gcsemu: listen: %w", err)
	}
	r := &Running{Server: s, srv: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}, l: l}
	go r.srv.Serve(l)
	return r, nil
}

// Host is host:port, the value of STORAGE_EMULATOR_HOST.
func (r *Running) Host() string { return r.l.Addr().String() }

// Close stops serving.
func (r *Running) Close() error { return r.srv.Close() }

// Bucket is a bucket's stored metadata.
type Bucket struct {
	Name string `json:"name"`
	// RetentionSeconds is the retention policy's period (0: none).
	RetentionSeconds int64     `json:"retention_seconds"`
	Created          time.Time `json:"created"`
}

// object is an object's stored metadata; its bytes are beside it.
type object struct {
	Name           string            `json:"name"`
	Generation     int64             `json:"generation"`
	Size           int64             `json:"size"`
	ContentType    string            `json:"content_type"`
	Created        time.Time         `json:"created"`
	MD5            []byte            `json:"md5"`
	CRC32C         uint32            `json:"crc32c"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	RetentionUntil time.Time         `json:"retention_until"`
}

// CreateBucket creates a bucket with a retention period (0 for none); an existing bucket is
// left as it is and reported by an error wrapping fs.ErrExist.
func (s *Server) CreateBucket(name string, retention time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createBucket(Bucket{Name: name, RetentionSeconds: int64(retention / time.Second), Created: s.Now().UTC()})
}

func (s *Server) createBucket(b Bucket) error {
	if !validBucket(b.Name) {
		return fmt.Errorf("gcsemu: invalid bucket name %q", b.Name)
	}
	d := filepath.Join(s.dir, b.Name)
	if err := os.Mkdir(d, 0o755); err != nil {
		return fmt.Errorf("gcsemu: bucket %s: %w", b.Name, err)
	}
	if err := os.Mkdir(filepath.Join(d, "o"), 0o755); err != nil {
		return fmt.Errorf("gcsemu: bucket %s: %w", b.Name, err)
	}
	return writeJSON(filepath.Join(d, "bucket.json"), b)
}

func validBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Server) bucket(name string) (Bucket, error) {
	var b Bucket
	if !validBucket(name) {
		return b, fs.ErrNotExist
	}
	err := readJSON(filepath.Join(s.dir, name, "bucket.json"), &b)
	return b, err
}

// objectPath is where an object's metadata (.json) and bytes (.data) live: the name
// escaped into one file name.
func (s *Server) objectPath(bucket, name string) string {
	return filepath.Join(s.dir, bucket, "o", url.PathEscape(name))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, "/upload/storage/v1/b/"):
		rest := strings.TrimPrefix(path, "/upload/storage/v1/b/")
		bucket, tail, _ := strings.Cut(rest, "/")
		if tail != "o" || r.Method != http.MethodPost {
			notImplemented(w, r)
			return
		}
		s.insertObject(w, r, bucket)
	case path == "/storage/v1/b" || path == "/storage/v1/b/":
		if r.Method != http.MethodPost {
			notImplemented(w, r)
			return
		}
		s.insertBucket(w, r)
	case strings.HasPrefix(path, "/storage/v1/b/"):
		parts := strings.SplitN(strings.TrimPrefix(path, "/storage/v1/b/"), "/", 3)
		bucket := parts[0]
		switch {
		case len(parts) == 1 && r.Method == http.MethodGet:
			b, err := s.bucket(bucket)
			if err != nil {
				writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
				return
			}
			writeResource(w, bucketResource(b))
		case len(parts) == 2 && parts[1] == "o" && r.Method == http.MethodGet:
			s.listObjects(w, r, bucket)
		case len(parts) == 3 && parts[1] == "o":
			name, err := url.PathUnescape(parts[2])
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid", "bad object name")
				return
			}
			switch r.Method {
			case http.MethodGet:
				s.getObject(w, r, bucket, name, r.URL.Query().Get("alt") == "media")
			case http.MethodDelete:
				s.deleteObject(w, bucket, name)
			default:
				notImplemented(w, r)
			}
		default:
			notImplemented(w, r)
		}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// The XML API's read: /{bucket}/{object}.
		bucket, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		name, err := url.PathUnescape(rest)
		if !ok || err != nil {
			notImplemented(w, r)
			return
		}
		s.getObject(w, r, bucket, name, true)
	default:
		notImplemented(w, r)
	}
}

func (s *Server) insertBucket(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name            string `json:"name"`
		RetentionPolicy *struct {
			RetentionPeriod string `json:"retentionPeriod"`
		} `json:"retentionPolicy"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "bucket: "+err.Error())
		return
	}
	b := Bucket{Name: req.Name, Created: s.Now().UTC()}
	if req.RetentionPolicy != nil {
		n, err := strconv.ParseInt(req.RetentionPolicy.RetentionPeriod, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid", "retentionPolicy.retentionPeriod: want seconds")
			return
		}
		b.RetentionSeconds = n
	}
	if err := s.createBucket(b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			writeError(w, http.StatusConflict, "conflict", "Your previous request to create the named bucket succeeded and you already own it.")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	writeResource(w, bucketResource(b))
}

func (s *Server) insertObject(w http.ResponseWriter, r *http.Request, bucket string) {
	b, err := s.bucket(bucket)
	if err != nil {
		writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	q := r.URL.Query()
	meta := struct {
		Name        string            `json:"name"`
		ContentType string            `json:"contentType"`
		Metadata    map[string]string `json:"metadata"`
	}{}
	var data []byte
	switch q.Get("uploadType") {
	case "media":
		data, err = io.ReadAll(r.Body)
		meta.ContentType = r.Header.Get("Content-Type")
	case "multipart":
		data, err = readMultipart(r, &meta)
	default:
		writeError(w, http.StatusNotImplemented, "notImplemented", "uploadType "+q.Get("uploadType")+" is not served here")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "upload: "+err.Error())
		return
	}
	if n := q.Get("name"); n != "" {
		meta.Name = n
	}
	if meta.Name == "" {
		writeError(w, http.StatusBadRequest, "required", "Required object name")
		return
	}
	now := s.Now().UTC()
	p := s.objectPath(bucket, meta.Name)
	var cur object
	exists := readJSON(p+".json", &cur) == nil
	if v := q.Get("ifGenerationMatch"); v != "" {
		want, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (want == 0 && exists) || (want != 0 && (!exists || cur.Generation != want)) {
			writeError(w, http.StatusPreconditionFailed, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
			return
		}
	}
	if exists && now.Before(cur.RetentionUntil) {
		writeError(w, http.StatusForbidden, "retentionPolicyNotMet",
			fmt.Sprintf("Object '%s/%s' is subject to bucket's retention policy and cannot be deleted, overwritten or archived until %s", bucket, meta.Name, cur.RetentionUntil.Format(time.RFC3339)))
		return
	}
	sum := md5.Sum(data)
	o := object{Name: meta.Name, Generation: now.UnixMicro(), Size: int64(len(data)), ContentType: meta.ContentType,
		Created: now, MD5: sum[:], CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), Metadata: meta.Metadata}
	if exists && o.Generation <= cur.Generation {
		o.Generation = cur.Generation + 1
	}
	if b.RetentionSeconds > 0 {
		o.RetentionUntil = now.Add(time.Duration(b.RetentionSeconds) * time.Second)
	}
	if err := writeFile(p+".data", data); err != nil {
		writeError(w, http.StatusInternalServerError, "backendError", err.Error())
		return
	}
	if err := writeJSON(p+".json", o); err != nil {
		writeError(w, http.StatusInternalServerError, "backendError", err.Error())
		return
	}
	writeResource(w, objectResource(bucket, o))
}

// readMultipart reads a multipart/related upload: the object's JSON metadata, then its bytes.
func readMultipart(r *http.Request, meta any) ([]byte, error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("metadata part: %w", err)
	}
	if err := json.NewDecoder(part).Decode(meta); err != nil {
		return nil, fmt.Errorf("metadata part: %w", err)
	}
	part, err = mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("media part: %w", err)
	}
	return io.ReadAll(part)
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, name string, media bool) {
	var o object
	p := s.objectPath(bucket, name)
	if err := readJSON(p+".json", &o); err != nil {
		writeError(w, http.StatusNotFound, "notFound", "No such object: "+bucket+"/"+name)
		return
	}
	if !media {
		writeResource(w, objectResource(bucket, o))
		return
	}
	data, err := os.ReadFile(p + ".data")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "backendError", err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", o.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Goog-Generation", strconv.FormatInt(o.Generation, 10))
	h.Set("X-Goog-Metageneration", "1")
	h.Set("Last-Modified", o.Created.Format(http.TimeFormat))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

func (s *Server) deleteObject(w http.ResponseWriter, bucket, name string) {
	var o object
	p := s.objectPath(bucket, name)
	if err := readJSON(p+".json", &o); err != nil {
		writeError(w, http.StatusNotFound, "notFound", "No such object: "+bucket+"/"+name)
		return
	}
	if s.Now().Before(o.RetentionUntil) {
		writeError(w, http.StatusForbidden, "retentionPolicyNotMet",
			fmt.Sprintf("Object '%s/%s' is subject to bucket's retention policy and cannot be deleted, overwritten or archived until %s", bucket, name, o.RetentionUntil.Format(time.RFC3339)))
		return
	}
	if err := errors.Join(os.Remove(p+".json"), os.Remove(p+".data")); err != nil {
		writeError(w, http.StatusInternalServerError, "backendError", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, bucket string) {
	if _, err := s.bucket(bucket); err != nil {
		writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	q := r.URL.Query()
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	start, end := q.Get("startOffset"), q.Get("endOffset")
	if tok := q.Get("pageToken"); tok > start {
		start = tok // the token is the first name of the next page
	}
	max := 1000
	if v, err := strconv.Atoi(q.Get("maxResults")); err == nil && v > 0 && v < max {
		max = v
	}
	files, err := os.ReadDir(filepath.Join(s.dir, bucket, "o"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "backendError", err.Error())
		return
	}
	var names []string
	for _, f := range files {
		esc, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok {
			continue
		}
		if name, err := url.PathUnescape(esc); err == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp := struct {
		Kind          string           `json:"kind"`
		Items         []map[string]any `json:"items,omitempty"`
		Prefixes      []string         `json:"prefixes,omitempty"`
		NextPageToken string           `json:"nextPageToken,omitempty"`
	}{Kind: "storage#objects"}
	seen := map[string]bool{}
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) || name < start || (end != "" && name >= end) {
			continue
		}
		if len(resp.Items)+len(resp.Prefixes) == max {
			resp.NextPageToken = name
			break
		}
		if delim != "" {
			if i := strings.Index(name[len(prefix):], delim); i >= 0 {
				p := name[:len(prefix)+i+len(delim)]
				if !seen[p] {
					seen[p] = true
					resp.Prefixes = append(resp.Prefixes, p)
				}
				continue
			}
		}
		var o object
		if err := readJSON(s.objectPath(bucket, name)+".json", &o); err != nil {
			continue
		}
		resp.Items = append(resp.Items, objectResource(bucket, o))
	}
	writeResource(w, resp)
}

func bucketResource(b Bucket) map[string]any {
	m := map[string]any{"kind": "storage#bucket", "id": b.Name, "name": b.Name,
		"timeCreated": b.Created.Format(time.RFC3339Nano), "metageneration": "1", "location": "LOCAL", "storageClass": "STANDARD"}
	if b.RetentionSeconds > 0 {
		m["retentionPolicy"] = map[string]any{"retentionPeriod": strconv.FormatInt(b.RetentionSeconds, 10),
			"effectiveTime": b.Created.Format(time.RFC3339Nano)}
	}
	return m
}

func objectResource(bucket string, o object) map[string]any {
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], o.CRC32C)
	m := map[string]any{"kind": "storage#object", "id": bucket + "/" + o.Name + "/" + strconv.FormatInt(o.Generation, 10),
		"name": o.Name, "bucket": bucket, "generation": strconv.FormatInt(o.Generation, 10), "metageneration": "1",
		"contentType": o.ContentType, "size": strconv.FormatInt(o.Size, 10),
		"md5Hash": base64.StdEncoding.EncodeToString(o.MD5), "crc32c": base64.StdEncoding.EncodeToString(crc[:]),
		"timeCreated": o.Created.Format(time.RFC3339Nano), "updated": o.Created.Format(time.RFC3339Nano),
		"storageClass": "STANDARD"}
	if len(o.Metadata) > 0 {
		m["metadata"] = o.Metadata
	}
	if !o.RetentionUntil.IsZero() {
		m["retentionExpirationTime"] = o.RetentionUntil.Format(time.RFC3339Nano)
	}
	return m
}

func writeResource(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// writeError answers in the JSON API's error shape, which the client turns into a
// *googleapi.Error with the code.
func writeError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": msg}}}})
}

func notImplemented(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "notImplemented", r.Method+" "+r.URL.Path+" is not served by the local Cloud Storage")
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// writeFile replaces path atomically, so a crash leaves the old version or the new one.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
