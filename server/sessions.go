package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
)

type sessionService struct {
	pb.UnimplementedSessionServiceServer
	*Server
}

func tokensPB(t authority.Tokens) (*pb.Session, string, string, *timestamppb.Timestamp) {
	return sessionPB(t.Session), t.AccessToken, t.RefreshToken, ts(t.AccessExpireTime)
}

func (s sessionService) CreateSession(ctx context.Context, req *pb.CreateSessionRequest) (*pb.CreateSessionResponse, error) {
	t, err := s.auth.CreateSession(ctx, actorFrom(ctx), authority.SessionInput{
		TenantID: req.GetTenantId(), UserID: req.GetUserId(), DeviceID: req.GetDeviceId(),
		ClientIP: req.GetClientIp(), Attributes: req.GetAttributes(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sess, access, refresh, exp := tokensPB(t)
	return &pb.CreateSessionResponse{Session: sess, AccessToken: access, RefreshToken: refresh, AccessTokenExpireTime: exp}, nil
}

func (s sessionService) RefreshSession(ctx context.Context, req *pb.RefreshSessionRequest) (*pb.RefreshSessionResponse, error) {
	t, err := s.auth.RefreshSession(ctx, actorFrom(ctx), req.GetRefreshToken(), req.GetClientIp())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sess, access, refresh, exp := tokensPB(t)
	return &pb.RefreshSessionResponse{Session: sess, AccessToken: access, RefreshToken: refresh, AccessTokenExpireTime: exp}, nil
}

func (s sessionService) VerifySession(ctx context.Context, req *pb.VerifySessionRequest) (*pb.VerifySessionResponse, error) {
	sess, exp, err := s.auth.VerifySession(ctx, authority.VerifyInput{
		AccessToken: req.GetAccessToken(), ClientIP: req.GetClientIp(), Capability: req.GetCapability(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.VerifySessionResponse{Session: sessionPB(sess), AccessTokenExpireTime: ts(exp)}, nil
}

func (s sessionService) GetSession(ctx context.Context, req *pb.GetSessionRequest) (*pb.GetSessionResponse, error) {
	sess, err := s.auth.GetSession(ctx, req.GetSessionId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetSessionResponse{Session: sessionPB(sess)}, nil
}

func (s sessionService) ListSessions(ctx context.Context, req *pb.ListSessionsRequest) (*pb.ListSessionsResponse, error) {
	list, next, err := s.auth.ListSessions(ctx, authority.SessionFilter{
		TenantID: req.GetTenantId(), UserID: req.GetUserId(), DeviceID: req.GetDeviceId(),
		IncludeInactive: req.GetIncludeInactive(),
	}, authority.Page{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.ListSessionsResponse{Sessions: listPB(list, sessionPB), NextPageToken: next}, nil
}

func (s sessionService) RevokeSession(ctx context.Context, req *pb.RevokeSessionRequest) (*pb.RevokeSessionResponse, error) {
	if req.GetIssuer() != "" || req.GetTokenId() != "" {
		return s.revokeExternal(ctx, req) // issuers.go
	}
	wait, err := parseWait(req.GetWait())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sess, rev, err := s.auth.RevokeSession(ctx, actorFrom(ctx), req.GetSessionId(), req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &pb.RevokeSessionResponse{Session: sessionPB(sess)}
	if req.GetWait() != "" {
		resp.Enforcement = s.enforcement(ctx, rev, wait)
	}
	return resp, nil
}

func (s sessionService) RevokeUserSessions(ctx context.Context, req *pb.RevokeUserSessionsRequest) (*pb.RevokeUserSessionsResponse, error) {
	wait, err := parseWait(req.GetWait())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	n, rev, err := s.auth.RevokeUserSessions(ctx, actorFrom(ctx), req.GetTenantId(), req.GetUserId(), req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &pb.RevokeUserSessionsResponse{RevokedSessions: int32(n)}
	if req.GetWait() != "" {
		resp.Enforcement = s.enforcement(ctx, rev, wait)
	}
	return resp, nil
}
