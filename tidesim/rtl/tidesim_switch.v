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
    parameter PORTS = 2,
    parameter WIDTH = 64,
    parameter CW = 8,
    parameter RW = 8,
    parameter AW = 4,
    parameter MW = 16
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire [INPUTS*WIDTH-1:0]   in_frames,
    output reg  [PORTS*WIDTH-1:0]  out_frames,
`include "tidesim_calendar_ports.vh"
);
`include "tidesim_calendar_inst.vh"

    integer p;
    reg [CW-1:0] sel;
    always @(posedge clk) begin
        for (p = 0; p < PORTS; p = p + 1) begin
            sel = cfg[p*CW +: CW];
            if (rst || sel == 0 || sel > INPUTS)
                out_frames[p*WIDTH +: WIDTH] <= {WIDTH{1'b0}};
            else
                out_frames[p*WIDTH +: WIDTH] <= in_frames[(sel - 1)*WIDTH +: WIDTH];
        end
    end
endmodule

`default_nettype wire
