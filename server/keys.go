package server

import (
	"context"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

type keyService struct {
	pb.UnimplementedKeyServiceServer
	*Server
}

func (s keyService) ListKeys(ctx context.Context, _ *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	keys, err := s.auth.ListKeys(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.ListKeysResponse{Keys: listPB(keys, keyPB)}, nil
}

func (s keyService) RotateKey(ctx context.Context, req *pb.RotateKeyRequest) (*pb.RotateKeyResponse, error) {
	added, retired, err := s.auth.RotateKey(ctx, actorFrom(ctx), req.GetAlgorithm(), req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &pb.RotateKeyResponse{Key: keyPB(added)}
	if retired.ID != "" {
		resp.RetiredKey = keyPB(retired)
	}
	return resp, nil
}
