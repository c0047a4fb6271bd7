package server

import (
	"context"
	"sync"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// issuerService serves IssuerService: the external OIDC issuers whose
// tokens the authority and the mirrors accept (internal/authority's
// issuers.go and issuerfetch.go hold the rules and the key fetcher).
type issuerService struct {
	pb.UnimplementedIssuerServiceServer
	*Server
}

// issuerFetchers runs one key fetcher per Authority, from the first
// registration of the IssuerService until the server shuts down.
var issuerFetchers sync.Map // *Server -> struct{}

// newIssuerService returns the service and starts the server's fetcher of
// issuers' keys, which stops at Shutdown.
func (s *Server) newIssuerService() issuerService {
	if _, loaded := issuerFetchers.LoadOrStore(s, struct{}{}); !loaded {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.closing
			cancel()
			issuerFetchers.Delete(s)
		}()
		go s.auth.RunIssuerFetcher(ctx)
	}
	return issuerService{Server: s}
}

func issuerSettings(i *pb.Issuer) authority.IssuerSettings {
	return authority.IssuerSettings{
		URL: i.GetIssuer(), TenantID: i.GetTenantId(), Audiences: i.GetAudiences(),
		UserClaim: i.GetUserClaim(), SessionClaim: i.GetSessionClaim(), Algorithms: i.GetAlgorithms(),
		Leeway: i.GetLeeway().AsDuration(), MaxTokenLifetime: i.GetMaxTokenLifetime().AsDuration(),
	}
}

func (s issuerService) CreateIssuer(ctx context.Context, req *pb.CreateIssuerRequest) (*pb.CreateIssuerResponse, error) {
	if err := checkDurations(req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	rec, err := s.auth.CreateIssuer(ctx, actorFrom(ctx), issuerSettings(req.GetIssuer()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.CreateIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) UpdateIssuer(ctx context.Context, req *pb.UpdateIssuerRequest) (*pb.UpdateIssuerResponse, error) {
	if err := checkDurations(req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	rec, err := s.auth.UpdateIssuer(ctx, actorFrom(ctx), issuerSettings(req.GetIssuer()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.UpdateIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) GetIssuer(ctx context.Context, req *pb.GetIssuerRequest) (*pb.GetIssuerResponse, error) {
	rec, err := s.auth.GetIssuer(ctx, req.GetIssuer())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) ListIssuers(ctx context.Context, _ *pb.ListIssuersRequest) (*pb.ListIssuersResponse, error) {
	list, err := s.auth.ListIssuers(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &pb.ListIssuersResponse{}
	for _, rec := range list {
		out.Issuers = append(out.Issuers, issuerPB(rec, true))
	}
	return out, nil
}

func (s issuerService) DeleteIssuer(ctx context.Context, req *pb.DeleteIssuerRequest) (*pb.DeleteIssuerResponse, error) {
	if err := s.auth.DeleteIssuer(ctx, actorFrom(ctx), req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.DeleteIssuerResponse{}, nil
}

// checkDurations refuses durations that do not convert (out of range).
func checkDurations(i *pb.Issuer) error {
	for field, d := range map[string]*durationpb.Duration{"leeway": i.GetLeeway(), "max_token_lifetime": i.GetMaxTokenLifetime()} {
		if d != nil && d.CheckValid() != nil {
			return &authority.FieldError{Field: field, Msg: "is not a valid duration"}
		}
	}
	return nil
}

// issuerPB converts an issuer; withStatus adds the fetch status (API
// responses), which events and snapshots leave out.
func issuerPB(rec storage.Issuer, withStatus bool) *pb.Issuer {
	out := &pb.Issuer{
		Issuer: rec.URL, TenantId: rec.TenantID, Audiences: rec.Audiences, UserClaim: rec.UserClaim,
		SessionClaim: rec.SessionClaim, Algorithms: rec.Algorithms, JwksUri: rec.JWKSURI,
		CreateTime: ts(rec.CreateTime), UpdateTime: ts(rec.UpdateTime),
	}
	if rec.Leeway != 0 {
		out.Leeway = durationpb.New(rec.Leeway)
	}
	if rec.MaxTokenLifetime != 0 {
		out.MaxTokenLifetime = durationpb.New(rec.MaxTokenLifetime)
	}
	for _, k := range rec.Keys {
		out.Keys = append(out.Keys, &pb.IssuerKey{KeyId: k.ID, Algorithms: k.Algorithms, PublicKey: k.PublicKey})
	}
	if withStatus {
		out.FetchStatus = &pb.IssuerFetchStatus{
			LastSuccessTime: ts(rec.LastSuccessTime), LastErrorTime: ts(rec.LastErrorTime),
			LastError: rec.LastError, NextFetchTime: ts(rec.NextFetchTime),
		}
	}
	return out
}

// issuerEventPB converts an issuer event; ok is false for another kind.
func issuerEventPB(e storage.Event, out *pb.Event) bool {
	switch {
	case e.Kind == storage.EventIssuerUpdated && e.Issuer != nil:
		out.Kind = &pb.Event_IssuerUpdated{IssuerUpdated: issuerPB(*e.Issuer, false)}
	case e.Kind == storage.EventIssuerDeleted && e.Issuer != nil:
		out.Kind = &pb.Event_IssuerDeleted{IssuerDeleted: &pb.Issuer{Issuer: e.Issuer.URL}}
	default:
		return false
	}
	return true
}

// fieldSnapshotIssuers is Snapshot.issuers.
const fieldSnapshotIssuers = 5

// Issuers adds the external issuers to the snapshot's first part (with
// the keys: a mirror needs them before any token it checks).
func (w *snapshotWriter) Issuers(list []storage.Issuer) error {
	for _, rec := range list {
		if err := w.add(fieldSnapshotIssuers, issuerPB(rec, false), false); err != nil {
			return err
		}
	}
	return nil
}
