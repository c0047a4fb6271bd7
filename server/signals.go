package server

import (
	"context"
	"sync"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// signalService serves SignalService: the Shared Signals transmitters this
// authority receives from (internal/receiver holds the rules).
type signalService struct {
	pb.UnimplementedSignalServiceServer
	*Server
}

// receivers holds the receiver of each Server that made its own (no
// Options.Receiver): it runs from the first registration until Shutdown.
var receivers sync.Map // *Server -> *receiver.Receiver

// signalReceiver is the server's receiver: Options.Receiver, which its
// creator runs (serve), or one of its own, run until Shutdown.
func (s *Server) signalReceiver() *receiver.Receiver {
	if s.opts.Receiver != nil {
		return s.opts.Receiver
	}
	r := receiver.New(s.auth, receiver.Config{PublicURL: s.opts.PublicURL, Logger: s.log})
	got, loaded := receivers.LoadOrStore(s, r)
	if !loaded {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.closing
			cancel()
			receivers.Delete(s)
		}()
		go r.Run(ctx)
	}
	return got.(*receiver.Receiver)
}

func (s *Server) newSignalService() signalService {
	_ = s.metrics.reg.Register(signalCollector{r: s.signalReceiver()}) // signalmetrics.go
	return signalService{Server: s}
}

func (s signalService) CreateTransmitter(ctx context.Context, req *pb.CreateTransmitterRequest) (*pb.CreateTransmitterResponse, error) {
	if d := req.GetBanDuration(); d != nil && d.CheckValid() != nil {
		return nil, s.status(ctx, &authority.FieldError{Field: "ban_duration", Msg: "is not a valid duration"})
	}
	rec, err := s.signalReceiver().Add(ctx, actorFrom(ctx), receiver.Settings{
		ConfigURL: req.GetConfigUrl(), Audience: req.GetAudience(), Delivery: req.GetDelivery(),
		BearerToken: req.GetBearerToken(), TenantID: req.GetTenantId(), BanDuration: req.GetBanDuration().AsDuration(),
		Description: req.GetDescription(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.CreateTransmitterResponse{Transmitter: transmitterPB(rec)}, nil
}

func (s signalService) GetTransmitter(ctx context.Context, req *pb.GetTransmitterRequest) (*pb.GetTransmitterResponse, error) {
	rec, err := s.signalReceiver().Get(ctx, req.GetTransmitterId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetTransmitterResponse{Transmitter: transmitterPB(rec)}, nil
}

func (s signalService) ListTransmitters(ctx context.Context, _ *pb.ListTransmittersRequest) (*pb.ListTransmittersResponse, error) {
	list, err := s.signalReceiver().List(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &pb.ListTransmittersResponse{}
	for _, rec := range list {
		out.Transmitters = append(out.Transmitters, transmitterPB(rec))
	}
	return out, nil
}

func (s signalService) DeleteTransmitter(ctx context.Context, req *pb.DeleteTransmitterRequest) (*pb.DeleteTransmitterResponse, error) {
	if err := s.signalReceiver().Delete(ctx, actorFrom(ctx), req.GetTransmitterId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.DeleteTransmitterResponse{}, nil
}

// transmitterPB converts a transmitter, without its secrets (the bearer
// token, the push secret's hash).
func transmitterPB(rec storage.SignalTransmitter) *pb.Transmitter {
	out := &pb.Transmitter{
		TransmitterId: rec.ID, ConfigUrl: rec.ConfigURL, Audience: rec.Audience, TenantId: rec.TenantID,
		Description: rec.Description, Issuer: rec.Issuer, StreamId: rec.StreamID,
		ConfigurationEndpoint: rec.ConfigurationEndpoint, PollUrl: rec.PollURL,
		CreateTime: ts(rec.CreateTime), UpdateTime: ts(rec.UpdateTime), CreatedBy: rec.CreatedBy,
		FetchStatus: &pb.IssuerFetchStatus{
			LastSuccessTime: ts(rec.LastSuccessTime), LastErrorTime: ts(rec.LastErrorTime), LastError: rec.LastError,
		},
	}
	switch rec.DeliveryMethod {
	case ssf.DeliveryPush:
		out.Delivery = "push"
	case ssf.DeliveryPoll:
		out.Delivery = "poll"
	}
	if rec.BanDuration != 0 {
		out.BanDuration = durationpb.New(rec.BanDuration)
	}
	for _, k := range rec.Keys {
		out.KeyIds = append(out.KeyIds, k.ID)
	}
	return out
}
