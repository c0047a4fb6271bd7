package server

import (
	"context"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

type banService struct {
	pb.UnimplementedBanServiceServer
	*Server
}

func (s banService) CreateBan(ctx context.Context, req *pb.CreateBanRequest) (*pb.CreateBanResponse, error) {
	wait, err := parseWait(req.GetWait())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	expire, err := optionalTS("expire_time", req.GetExpireTime())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	kind, value := subjectFromPB(req.GetSubject())
	ban, w, err := s.auth.CreateBan(ctx, actorFrom(ctx), authority.BanInput{
		TenantID: req.GetTenantId(), Kind: kind, Value: value,
		Duration: req.GetDuration(), ExpireTime: expire,
		Capabilities: req.GetCapabilities(), Reason: req.GetReason(), Policy: req.GetPolicy(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &pb.CreateBanResponse{Ban: banPB(ban, s.now()), RevokedSessions: int32(w.RevokedSessions)}
	if req.GetWait() != "" {
		resp.Enforcement = s.enforcement(ctx, w.Revision, wait)
	}
	return resp, nil
}

func (s banService) LiftBan(ctx context.Context, req *pb.LiftBanRequest) (*pb.LiftBanResponse, error) {
	wait, err := parseWait(req.GetWait())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	ban, rev, err := s.auth.LiftBan(ctx, actorFrom(ctx), req.GetBanId(), req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &pb.LiftBanResponse{Ban: banPB(ban, s.now())}
	if req.GetWait() != "" {
		resp.Enforcement = s.enforcement(ctx, rev, wait)
	}
	return resp, nil
}

func (s banService) GetBan(ctx context.Context, req *pb.GetBanRequest) (*pb.GetBanResponse, error) {
	ban, err := s.auth.GetBan(ctx, req.GetBanId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetBanResponse{Ban: banPB(ban, s.now())}, nil
}

var subjectKinds = map[pb.SubjectKind]storage.SubjectKind{
	pb.SubjectKind_SUBJECT_KIND_UNSPECIFIED: "",
	pb.SubjectKind_SUBJECT_KIND_USER:        storage.SubjectUser,
	pb.SubjectKind_SUBJECT_KIND_IP:          storage.SubjectIP,
	pb.SubjectKind_SUBJECT_KIND_DEVICE:      storage.SubjectDevice,
}

var banStateFilters = map[pb.BanState]authority.BanState{
	pb.BanState_BAN_STATE_UNSPECIFIED: authority.AnyState,
	pb.BanState_BAN_STATE_ACTIVE:      authority.StateActive,
	pb.BanState_BAN_STATE_EXPIRED:     authority.StateExpired,
	pb.BanState_BAN_STATE_LIFTED:      authority.StateLifted,
}

func (s banService) ListBans(ctx context.Context, req *pb.ListBansRequest) (*pb.ListBansResponse, error) {
	kind, ok := subjectKinds[req.GetSubjectKind()]
	if !ok {
		return nil, s.status(ctx, &authority.FieldError{Field: "subject_kind", Msg: "unknown subject kind"})
	}
	state, ok := banStateFilters[req.GetState()]
	if !ok {
		return nil, s.status(ctx, &authority.FieldError{Field: "state", Msg: "unknown ban state"})
	}
	bans, next, err := s.auth.ListBans(ctx, authority.BanFilter{TenantID: req.GetTenantId(), Kind: kind, State: state},
		authority.Page{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.ListBansResponse{Bans: bansPB(bans, s.now()), NextPageToken: next}, nil
}

func (s banService) CheckBan(ctx context.Context, req *pb.CheckBanRequest) (*pb.CheckBanResponse, error) {
	banned, bans, err := s.auth.CheckBan(ctx, authority.CheckInput{
		TenantID: req.GetTenantId(), UserID: req.GetUserId(), IP: req.GetIp(),
		DeviceID: req.GetDeviceId(), Capability: req.GetCapability(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.CheckBanResponse{Banned: banned, Bans: bansPB(bans, s.now())}, nil
}
