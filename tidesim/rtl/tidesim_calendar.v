// tidesim_calendar: a bittide calendar unit, with its shadow calendar.
//
// Two banks of 2**AW entries, each entry a configuration (PORTS fields of CW
// bits, two's complement) and a repeat count (the entry holds for repeat + 1
// cycles). One bank is active, the other is the shadow that software writes
// (wr_en, wr_addr, wr_config, wr_repeat). swap_req, with swap_depth entries,
// asks for the shadow to become active; the swap is taken at the end of the
// metacycle's last cycle only (at once while rst), so the metacycle in
// progress always finishes on the calendar it started with.
//
// Outputs, for the current cycle: cfg (its configuration), entry, metacycle (counts completed
// metacycles, wrapping), last_cycle (the final cycle of the metacycle),
// swap_pending.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_calendar #(
    parameter PORTS = 2,
    parameter CW = 8,         // bits of one port's configuration
    parameter RW = 8,         // bits of a repeat count
    parameter AW = 4,         // 2**AW entries a bank
    parameter MW = 16         // bits of the metacycle counter
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  wr_en,
    input  wire [AW-1:0]         wr_addr,
    input  wire [PORTS*CW-1:0]   wr_config,
    input  wire [RW-1:0]         wr_repeat,
    input  wire                  swap_req,
    input  wire [AW:0]           swap_depth,
    output wire [PORTS*CW-1:0]   cfg,
    output reg  [AW-1:0]         entry,
    output reg  [MW-1:0]         metacycle,
    output wire                  last_cycle,
    output reg                   swap_pending
);
    reg [PORTS*CW-1:0] cfg_mem [0:(2 << AW) - 1];
    reg [RW-1:0]       rep_mem [0:(2 << AW) - 1];
    reg                active;          // the active bank
    reg [AW:0]         depth_active, depth_shadow;
    reg [RW-1:0]       repeat_count;    // cycles done of this entry, less one

    wire [AW:0] here = {active, entry};
    wire last_entry = {1'b0, entry} == depth_active - 1'b1;
    assign cfg = cfg_mem[here];
    assign last_cycle = last_entry && repeat_count == rep_mem[here];

    // a request in this cycle counts: on the last cycle it swaps at once
    wire pending = swap_pending || swap_req;
    wire [AW:0] next_depth = swap_req ? swap_depth : depth_shadow;

    always @(posedge clk) begin
        if (wr_en) begin
            cfg_mem[{~active, wr_addr}] <= wr_config;
            rep_mem[{~active, wr_addr}] <= wr_repeat;
        end
        if (swap_req)
            depth_shadow <= swap_depth;
        if (rst) begin
            entry <= 0;
            repeat_count <= 0;
            metacycle <= 0;
            swap_pending <= 1'b0;
            if (swap_req) begin
                active <= ~active;
                depth_active <= swap_depth;
            end
        end else if (!last_cycle) begin
            swap_pending <= pending;
            if (repeat_count != rep_mem[here]) begin
                repeat_count <= repeat_count + 1'b1;
            end else begin
                repeat_count <= 0;
                entry <= entry + 1'b1;
            end
        end else begin
            entry <= 0;
            repeat_count <= 0;
            metacycle <= metacycle + 1'b1;
            swap_pending <= 1'b0;
            if (pending) begin
                active <= ~active;
                depth_active <= next_depth;
            end
        end
    end

    initial active = 1'b0;
endmodule

`default_nettype wire
