// tidesim_gather: the gather unit, a calendar over the transmit memory.
//
// Each cycle, out-link p sends the word at address cfg[p] of the transmit
// memory (registered: on the link the next cycle), or the null frame (all
// zeros, out_valid low) where cfg[p] is -1. The node writes the memory
// through mem_wr_en/mem_wr_addr/mem_wr_data; a write and a read of one
// address in one cycle read the old word. The calendar's ports are
// tidesim_calendar's; a configuration is a signed CW-bit address.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_gather #(
    parameter PORTS = 2,
    parameter WIDTH = 64,
    parameter MA = 4,         // 2**MA words of memory
    parameter CW = 8,
    parameter RW = 8,
    parameter AW = 4,
    parameter MW = 16
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     mem_wr_en,
    input  wire [MA-1:0]            mem_wr_addr,
    input  wire [WIDTH-1:0]         mem_wr_data,
    output reg  [PORTS*WIDTH-1:0]   out_frames,
    output reg  [PORTS-1:0]         out_valid,
`include "tidesim_calendar_ports.vh"
);
`include "tidesim_calendar_inst.vh"

    reg [WIDTH-1:0] mem [0:(1 << MA) - 1];
    integer p;
    reg [CW-1:0] a;
    always @(posedge clk) begin
        if (mem_wr_en)
            mem[mem_wr_addr] <= mem_wr_data;
        for (p = 0; p < PORTS; p = p + 1) begin
            a = cfg[p*CW +: CW];
            if (rst || a[CW-1]) begin
                out_frames[p*WIDTH +: WIDTH] <= {WIDTH{1'b0}};
                out_valid[p] <= 1'b0;
            end else begin
                out_frames[p*WIDTH +: WIDTH] <= mem[a[MA-1:0]];
                out_valid[p] <= 1'b1;
            end
        end
    end
endmodule

`default_nettype wire
