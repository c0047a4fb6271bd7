package rpcerr

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// New is the status error of reason r with the catalogue's code.
func New(r pb.ErrorReason, msg string, meta map[string]string) error {
	row, _ := Lookup(r)
	c := row.Code
	if c == codes.OK {
		c = codes.Internal // a reason without a row: never OK, never Unknown
	}
	return NewStatus(c, r, msg, meta, 0).Err()
}

// NewStatus builds a status with code c and an ErrorInfo of reason r and
// metadata meta, and a RetryInfo when retry is positive. Only a call that
// keeps its cause's code (a partly done write) passes a code of its own;
// otherwise use New.
func NewStatus(c codes.Code, r pb.ErrorReason, msg string, meta map[string]string, retry time.Duration) *status.Status {
	st := status.New(c, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: r.String(), Domain: Domain, Metadata: meta}}
	if retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	}
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st
}

// Parsed is what a status says in the catalogue's terms.
type Parsed struct {
	// Info is the Portcullis ErrorInfo; nil when the status has none (made
	// by gRPC itself, a proxy or another server).
	Info *errdetails.ErrorInfo
	// Entry is the row of Info's reason; zero when the reason is unknown
	// (a newer authority) or there is no Info.
	Entry Entry
	// Ban is set for the ban reasons, from the metadata.
	Ban *BanError
}

// Parse reads st's Portcullis ErrorInfo back into the catalogue.
func Parse(st *status.Status) Parsed {
	var p Parsed
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok && i.GetDomain() == Domain {
			p.Info = i
			break
		}
	}
	if p.Info == nil {
		return p
	}
	if r, ok := pb.ErrorReason_value[p.Info.GetReason()]; ok && r != 0 {
		p.Entry, _ = Lookup(pb.ErrorReason(r))
		p.Ban = banFromInfo(pb.ErrorReason(r), p.Info.GetMetadata())
	}
	return p
}
