// tidesim_switch: bittide's switch, a crossbar driven by a calendar.
//
// Each cycle, output port p takes input (cfg[p] - 1), or the null frame
// (all zeros) where cfg[p] is 0, and presents it on the next cycle (the
// crossbar is registered). The calendar's ports are tidesim_calendar's.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_switch #(
    parameter INPUTS = 2,
    parameter OUTPUTS = 2,
    parameter WIDTH = 64,
    parameter CW = 8,
    parameter RW = 8,
    parameter AW = 4,
    parameter MW = 16
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire [INPUTS*WIDTH-1:0]   in_frames,
    output reg  [OUTPUTS*WIDTH-1:0]  out_frames,
    input  wire                      wr_en,
    input  wire [AW-1:0]             wr_addr,
    input  wire [OUTPUTS*CW-1:0]     wr_config,
    input  wire [RW-1:0]             wr_repeat,
    input  wire                      swap_req,
    input  wire [AW:0]               swap_depth,
    output wire [OUTPUTS*CW-1:0]     cfg,
    output wire [AW-1:0]             entry,
    output wire [MW-1:0]             metacycle,
    output wire                      last_cycle,
    output wire                      swap_pending
);
    tidesim_calendar #(.PORTS(OUTPUTS), .CW(CW), .RW(RW), .AW(AW), .MW(MW)) calendar (
        .clk(clk), .rst(rst), .wr_en(wr_en), .wr_addr(wr_addr), .wr_config(wr_config),
        .wr_repeat(wr_repeat), .swap_req(swap_req), .swap_depth(swap_depth),
        .cfg(cfg), .entry(entry), .metacycle(metacycle), .last_cycle(last_cycle),
        .swap_pending(swap_pending));

    integer p;
    reg [CW-1:0] sel;
    always @(posedge clk) begin
        for (p = 0; p < OUTPUTS; p = p + 1) begin
            sel = cfg[p*CW +: CW];
            if (rst || sel == 0 || sel > INPUTS)
                out_frames[p*WIDTH +: WIDTH] <= {WIDTH{1'b0}};
            else
                out_frames[p*WIDTH +: WIDTH] <= in_frames[(sel - 1)*WIDTH +: WIDTH];
        end
    end
endmodule

`default_nettype wire
