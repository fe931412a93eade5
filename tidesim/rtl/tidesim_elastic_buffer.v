// tidesim_elastic_buffer: the receive elastic buffer of a bittide link.
//
// A dual-clock FIFO of 2**ADDR frames. The write side runs on the clock
// recovered from the sender (one frame per sender tick while wr_en), the read
// side on the receiver's own clock (one frame per tick while rd_en). Each
// pointer crosses to the other domain Gray-coded, through SYNC flip-flops.
//
// Read domain:
//   occupancy = (write pointer as synchronised) - (read pointer), ADDR+1 bits
//   count     = occupancy - 2**(ADDR-1), signed: the count the controller sees
//   underflow = sticky: a read was taken while occupancy was 0
//   adj_valid with adj_frames (signed):
//     +N: the next N reads are suppressed (the buffer fills by N);
//     -N: the write side drops its next N frames (the buffer drains by N);
//         the request crosses to the write domain as a toggle through SYNC
//         flip-flops; one drain request at a time (adj_busy while in flight).
// Write domain:
//   full      = (write pointer) - (read pointer as synchronised) == 2**ADDR
//   overflow  = sticky: a frame was written while full
//
// A read of an empty buffer, or a write to a full one, still moves its
// pointer: the hardware reads and writes once per tick whatever happens, and
// the sticky flag says the frames can no longer be trusted.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_elastic_buffer #(
    parameter ADDR = 5,           // depth 2**ADDR frames
    parameter WIDTH = 64,         // frame width
    parameter SYNC = 2,           // synchroniser stages, >= 2
    parameter ADJ_WIDTH = 16      // width of adj_frames (signed)
) (
    // write domain
    input  wire                    wr_clk,
    input  wire                    wr_rst,
    input  wire                    wr_en,
    input  wire [WIDTH-1:0]        wr_data,
    output wire                    full,
    output reg                     overflow,
    // read domain
    input  wire                    rd_clk,
    input  wire                    rd_rst,
    input  wire                    rd_en,
    output reg  [WIDTH-1:0]        rd_data,
    output wire [ADDR:0]           occupancy,
    output wire signed [ADDR+1:0]  count,
    output reg                     underflow,
    input  wire                    adj_valid,
    input  wire signed [ADJ_WIDTH-1:0] adj_frames,
    output wire                    adj_busy
);
    localparam DEPTH = 1 << ADDR;

    localparam GRAY_W = ADDR + 1;
`include "tidesim_gray.vh"

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [ADDR:0] rptr, rgray;          // read domain; rgray crosses to the write side
    reg req;                           // read domain: toggles once per drain request

    // ------------------------------------------------------------ write domain
    reg  [ADDR:0] wptr, wgray;
    wire [ADDR:0] rgray_synced;
    reg  [ADJ_WIDTH-1:0] drops;        // frames still to drop
    wire req_synced;
    reg  ack;                          // the last drain request taken
    wire [ADDR:0] rsync_bin = gray2bin(rgray_synced);
    wire writing = wr_en && drops == 0;
    wire [ADJ_WIDTH-1:0] drain_n;      // held stable by the read side while in flight
    // the difference taken in ADDR+1 bits, wrapping, before it is compared
    wire [ADDR:0] wr_level = wptr - rsync_bin;
    assign full = wr_level == DEPTH;
    tidesim_sync #(.W(ADDR + 1), .STAGES(SYNC)) rptr_sync (
        .clk(wr_clk), .rst(wr_rst), .d(rgray), .q(rgray_synced));
    tidesim_sync #(.W(1), .STAGES(SYNC)) req_sync (
        .clk(wr_clk), .rst(wr_rst), .d(req), .q(req_synced));

    always @(posedge wr_clk) begin
        if (wr_rst) begin
            wptr <= 0;
            wgray <= 0;
            overflow <= 1'b0;
            drops <= 0;
            ack <= 1'b0;
        end else begin
            if (writing) begin
                mem[wptr[ADDR-1:0]] <= wr_data;
                wptr <= wptr + 1'b1;
                wgray <= bin2gray(wptr + 1'b1);
                if (full)
                    overflow <= 1'b1;
            end
            drops <= drops - (wr_en && drops != 0 ? 1'b1 : 1'b0)
                     + (req_synced != ack ? drain_n : 0);
            if (req_synced != ack)
                ack <= req_synced;
        end
    end

    // ------------------------------------------------------------- read domain
    wire [ADDR:0] wgray_synced;
    reg  [ADJ_WIDTH-1:0] fills;        // reads still to suppress
    reg  [ADJ_WIDTH-1:0] drain_hold;
    wire ack_synced;
    wire [ADDR:0] wsync_bin = gray2bin(wgray_synced);
    wire reading = rd_en && fills == 0;
    assign occupancy = wsync_bin - rptr;
    assign count = {1'b0, occupancy} - (DEPTH >> 1);
    assign drain_n = drain_hold;
    assign adj_busy = req != ack_synced;
    tidesim_sync #(.W(ADDR + 1), .STAGES(SYNC)) wptr_sync (
        .clk(rd_clk), .rst(rd_rst), .d(wgray), .q(wgray_synced));
    tidesim_sync #(.W(1), .STAGES(SYNC)) ack_sync (
        .clk(rd_clk), .rst(rd_rst), .d(ack), .q(ack_synced));

    always @(posedge rd_clk) begin
        if (rd_rst) begin
            rptr <= 0;
            rgray <= 0;
            underflow <= 1'b0;
            fills <= 0;
            req <= 1'b0;
            drain_hold <= 0;
            rd_data <= 0;
        end else begin
            if (reading) begin
                rd_data <= mem[rptr[ADDR-1:0]];
                rptr <= rptr + 1'b1;
                rgray <= bin2gray(rptr + 1'b1);
                if (occupancy == 0)
                    underflow <= 1'b1;
            end
            fills <= fills - (rd_en && fills != 0 ? 1'b1 : 1'b0)
                     + (adj_valid && !adj_frames[ADJ_WIDTH-1] ? adj_frames : 0);
            if (adj_valid && adj_frames[ADJ_WIDTH-1] && !adj_busy) begin
                drain_hold <= -adj_frames;
                req <= ~req;
            end
        end
    end
endmodule

`default_nettype wire
