// tidesim_ddc: a domain difference counter.
//
// Counts the write domain's ticks (frames arriving, while wr_en) and the
// read domain's own ticks (while rd_en), both from 0 at reset, and shows
// their difference in the read domain: frames received less frames
// consumed, unbounded but for its W-bit wrap. The write count crosses
// Gray-coded through SYNC flip-flops, as in the elastic buffer.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_ddc #(
    parameter W = 32,
    parameter SYNC = 2
) (
    input  wire                wr_clk,
    input  wire                wr_rst,
    input  wire                wr_en,
    input  wire                rd_clk,
    input  wire                rd_rst,
    input  wire                rd_en,
    output wire signed [W-1:0] ddc
);
    localparam GRAY_W = W;
`include "tidesim_gray.vh"

    reg [W-1:0] wcount, wgray;
    always @(posedge wr_clk) begin
        if (wr_rst) begin
            wcount <= 0;
            wgray <= 0;
        end else if (wr_en) begin
            wcount <= wcount + 1'b1;
            wgray <= bin2gray(wcount + 1'b1);
        end
    end

    reg [W-1:0] rcount;
    wire [W-1:0] wgray_synced;
    tidesim_sync #(.W(W), .STAGES(SYNC)) wcount_sync (
        .clk(rd_clk), .rst(rd_rst), .d(wgray), .q(wgray_synced));
    always @(posedge rd_clk) begin
        if (rd_rst)
            rcount <= 0;
        else if (rd_en)
            rcount <= rcount + 1'b1;
    end

    wire [W-1:0] diff = gray2bin(wgray_synced) - rcount;
    assign ddc = diff;
endmodule

`default_nettype wire
