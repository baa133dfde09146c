package meter

import (
	"strings"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Firestore starts a proxy on addr ("" or "127.0.0.1:0": a free port) in front of the
// Firestore emulator at upstream (host:port) that counts what Firestore bills.
func (m *Meter) Firestore(addr, upstream string) (*Proxy, error) {
	return startProxy(addr, upstream, func(method string) observer {
		const svc = "/google.firestore.v1.Firestore/"
		if !strings.HasPrefix(method, svc) {
			return nil
		}
		name := method[len(svc):]
		return &fsStream{m: m, method: name, d: map[string]int64{"firestore.calls." + name: 1}}
	}, nil)
}

// fsStream counts one Firestore RPC. Reads are counted as responses arrive; writes wait
// for the stream's status, since a failed commit writes nothing.
type fsStream struct {
	m      *Meter
	method string
	d      map[string]int64

	docs    int64 // documents a query or list returned
	pending int64 // writes of a commit, counted if it succeeds
	bytes   int64 // the documents those writes set, as encoded
	deletes int64
	counts  map[string]bool // aliases of count aggregations
	batch   []bool          // BatchWrite: whether each write is a delete
}

func (s *fsStream) request(b []byte) {
	switch s.method {
	case "Commit":
		var r firestorepb.CommitRequest
		if proto.Unmarshal(b, &r) == nil {
			s.pending, s.deletes = countWrites(r.GetWrites())
			for _, w := range r.GetWrites() {
				if d := w.GetUpdate(); d != nil {
					s.bytes += int64(proto.Size(d))
				}
			}
		}
	case "BatchWrite":
		var r firestorepb.BatchWriteRequest
		if proto.Unmarshal(b, &r) == nil {
			for _, w := range r.GetWrites() {
				_, del := w.GetOperation().(*firestorepb.Write_Delete)
				s.batch = append(s.batch, del)
			}
		}
	case "CreateDocument", "UpdateDocument":
		s.pending = 1
	case "DeleteDocument":
		s.deletes = 1
	case "RunAggregationQuery":
		var r firestorepb.RunAggregationQueryRequest
		if proto.Unmarshal(b, &r) == nil {
			s.counts = map[string]bool{}
			for _, a := range r.GetStructuredAggregationQuery().GetAggregations() {
				if a.GetCount() != nil {
					s.counts[a.GetAlias()] = true
				}
			}
		}
	}
}

func countWrites(ws []*firestorepb.Write) (writes, deletes int64) {
	for _, w := range ws {
		switch w.GetOperation().(type) {
		case *firestorepb.Write_Delete:
			deletes++
		case *firestorepb.Write_Update, *firestorepb.Write_Transform:
			writes++
		}
	}
	return writes, deletes
}

func (s *fsStream) response(b []byte) {
	switch s.method {
	case "GetDocument":
		s.d["firestore.reads"]++
	case "BatchGetDocuments":
		var r firestorepb.BatchGetDocumentsResponse
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		switch {
		case r.GetFound() != nil:
			s.d["firestore.reads"]++
		case r.GetMissing() != "":
			s.d["firestore.reads"]++
			s.d["firestore.reads.missing"]++
		}
	case "RunQuery":
		var r firestorepb.RunQueryResponse
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		if r.GetDocument() != nil {
			s.docs++
		}
		s.d["firestore.reads"] += int64(r.GetSkippedResults())
	case "ListDocuments":
		var r firestorepb.ListDocumentsResponse
		if proto.Unmarshal(b, &r) == nil {
			s.docs += int64(len(r.GetDocuments()))
		}
	case "RunAggregationQuery":
		var r firestorepb.RunAggregationQueryResponse
		if proto.Unmarshal(b, &r) != nil || r.GetResult() == nil {
			return
		}
		reads := int64(1)
		for alias, v := range r.GetResult().GetAggregateFields() {
			if s.counts[alias] {
				reads = max(reads, (v.GetIntegerValue()+999)/1000)
			}
		}
		s.d["firestore.reads"] += reads
	case "Listen":
		var r firestorepb.ListenResponse
		if proto.Unmarshal(b, &r) == nil && r.GetDocumentChange() != nil {
			// A listener lives long: its reads are flushed as they come.
			s.m.addMap(map[string]int64{"firestore.reads": 1})
		}
	case "BatchWrite":
		var r firestorepb.BatchWriteResponse
		if proto.Unmarshal(b, &r) == nil {
			s.batchWrite(&r)
		}
	}
}

// batchWrite counts the writes of a BatchWrite that succeeded: each has its own status.
func (s *fsStream) batchWrite(r *firestorepb.BatchWriteResponse) {
	for i, st := range r.GetStatus() {
		if codes.Code(st.GetCode()) != codes.OK || i >= len(s.batch) {
			continue
		}
		if s.batch[i] {
			s.d["firestore.deletes"]++
		} else {
			s.d["firestore.writes"]++
		}
	}
}

func (s *fsStream) end(err error) {
	switch s.method {
	case "RunQuery", "ListDocuments":
		// A query that returns nothing still costs one read.
		s.d["firestore.reads"] += max(s.docs, 1)
	}
	if s.method == "GetDocument" && status.Code(err) == codes.NotFound {
		// A lookup of a document that does not exist is billed as a read.
		s.d["firestore.reads"]++
		s.d["firestore.reads.missing"]++
	}
	if err == nil {
		s.d["firestore.writes"] += s.pending
		s.d["firestore.write_bytes"] += s.bytes
		s.d["firestore.deletes"] += s.deletes
	} else {
		s.d["firestore.errors."+status.Code(err).String()]++
	}
	s.m.addMap(s.d)
}
