package server

import (
	"context"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
)

type auditService struct {
	pb.UnimplementedAuditServiceServer
	*Server
}

func (s auditService) ListAuditRecords(ctx context.Context, req *pb.ListAuditRecordsRequest) (*pb.ListAuditRecordsResponse, error) {
	recs, next, err := s.auth.ListAuditRecords(ctx, authority.AuditFilter{
		TenantID: req.GetTenantId(), Subject: req.GetSubject(), Actor: req.GetActor(), Action: req.GetAction(),
		Channel: req.GetChannel(), From: fromTS(req.GetStartTime()), To: fromTS(req.GetEndTime()),
	}, authority.Page{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &pb.ListAuditRecordsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Records = append(out.Records, auditPB(r))
	}
	return out, nil
}
