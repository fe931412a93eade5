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
    function [W-1:0] gray2bin(input [W-1:0] g);
        integer i;
        begin
            gray2bin[W-1] = g[W-1];
            for (i = W - 2; i >= 0; i = i - 1)
                gray2bin[i] = gray2bin[i + 1] ^ g[i];
        end
    endfunction

    reg [W-1:0] wcount, wgray;
    always @(posedge wr_clk) begin
        if (wr_rst) begin
            wcount <= 0;
            wgray <= 0;
        end else if (wr_en) begin
            wcount <= wcount + 1'b1;
            wgray <= (wcount + 1'b1) ^ ((wcount + 1'b1) >> 1);
        end
    end

    reg [W-1:0] rcount;
    reg [W-1:0] wgray_sync [0:SYNC-1];
    integer s;
    always @(posedge rd_clk) begin
        if (rd_rst) begin
            rcount <= 0;
            for (s = 0; s < SYNC; s = s + 1)
                wgray_sync[s] <= 0;
        end else begin
            wgray_sync[0] <= wgray;
            for (s = 1; s < SYNC; s = s + 1)
                wgray_sync[s] <= wgray_sync[s - 1];
            if (rd_en)
                rcount <= rcount + 1'b1;
        end
    end

    wire [W-1:0] diff = gray2bin(wgray_sync[SYNC-1]) - rcount;
    assign ddc = diff;
endmodule

`default_nettype wire
