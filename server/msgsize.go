package server

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protoapi "google.golang.org/protobuf/proto"
)

// A request larger than Limits.MaxRecvMsgSize is refused like every other
// limit: ResourceExhausted with an ErrorInfo (reason RESOURCE_EXHAUSTED,
// metadata limit=max_recv_msg_size and max_bytes). grpc-go cannot give its
// own refusal that shape: it checks a message's length prefix against
// grpc.MaxRecvMsgSize inside the stream's RecvMsg and writes its bare
// status to the wire right there (server stream's RecvMsg writes the
// status of any receive error itself), before any interceptor runs for a
// unary call and before a streaming handler could replace it; an error
// from the codec is turned into Internal, details dropped.
//
// So grpc's own limit is raised to a ceiling (recvCeiling, 4 x the limit:
// grpc's default 4 MiB at the default 1 MiB), and the limit is enforced by
// the codec: sizeCodec sees each request's size before decoding it, and
// leaves one over the limit undecoded, marked (markOversized); the
// interceptors (unary: before the handler; streams: in RecvMsg) turn the
// mark into the limit's status. A request above the ceiling is still
// refused by grpc itself, before it is read, with ResourceExhausted and no
// ErrorInfo: answering it with one would mean reading it whole first,
// which is what a bound on memory exists to prevent. The cost: a call may
// make the server buffer up to the ceiling (not decode it) before the
// refusal, as a stock grpc-go server does at its default 4 MiB.
type sizeCodec struct {
	encoding.CodecV2
	max int
}

// recvCeiling is grpc's own receive limit for a limit of max bytes.
func recvCeiling(max int) int {
	return int(min(int64(max)*4, math.MaxInt32))
}

func newSizeCodec(max int) *sizeCodec {
	return &sizeCodec{CodecV2: encoding.GetCodecV2(proto.Name), max: max}
}

// Name is the proto codec's: the sizeCodec is the proto codec.
func (c *sizeCodec) Name() string { return proto.Name }

func (c *sizeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(protoapi.Message); ok && data.Len() > c.max {
		markOversized(m, data.Len())
		return nil // grpc would make an error Internal; the interceptor refuses it
	}
	return c.CodecV2.Unmarshal(data, v)
}

// oversizedField is the field number of the mark, in the range protobuf
// reserves for its implementations: no message of ours has it.
const oversizedField protowire.Number = 19999

// markOversized makes the undecoded m carry its size as its only unknown
// field. The mark lives in the message, so a call that ends before the
// size interceptor (a failed authentication) leaves nothing behind. A
// client that sends that field itself only gets its own request refused.
func markOversized(m protoapi.Message, size int) {
	b := protowire.AppendTag(nil, oversizedField, protowire.VarintType)
	m.ProtoReflect().SetUnknown(protowire.AppendVarint(b, uint64(size)))
}

// oversized returns the size markOversized left in m.
func oversized(m any) (int, bool) {
	pm, ok := m.(protoapi.Message)
	if !ok {
		return 0, false
	}
	u := pm.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(u)
	if n < 0 || num != oversizedField || typ != protowire.VarintType {
		return 0, false
	}
	size, k := protowire.ConsumeVarint(u[n:])
	if k < 0 || n+k != len(u) {
		return 0, false
	}
	return int(size), true
}

// refused reports the limit's status if the codec refused m.
func (c *sizeCodec) refused(m any) error {
	n, ok := oversized(m)
	if !ok {
		return nil
	}
	return newLimitError("max_recv_msg_size", fmt.Sprintf("the request is %d bytes, more than the %d this authority accepts", n, c.max),
		map[string]string{"max_bytes": strconv.Itoa(c.max)})
}

func (c *sizeCodec) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.refused(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (c *sizeCodec) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, sizeCheckedStream{ServerStream: ss, c: c})
}

type sizeCheckedStream struct {
	grpc.ServerStream
	c *sizeCodec
}

func (s sizeCheckedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.c.refused(m)
}

// serverOptions install the codec, grpc's ceiling and the interceptors.
func (c *sizeCodec) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(c),
		grpc.MaxRecvMsgSize(recvCeiling(c.max)),
		grpc.ChainUnaryInterceptor(c.unary),
		grpc.ChainStreamInterceptor(c.stream),
	}
}
