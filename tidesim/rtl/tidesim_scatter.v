// tidesim_scatter: the scatter unit, a calendar over the receive memory.
//
// Each cycle, the frame of in-link p is written at address cfg[p] of the
// receive memory, or discarded where cfg[p] is -1 (links in port order: a
// later link wins an address two links share in one cycle). The node reads
// the memory through mem_rd_addr (mem_rd_data the next cycle, the word as it
// was before that cycle's writes). The calendar's ports are tidesim_calendar's.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_scatter #(
    parameter PORTS = 2,
    parameter WIDTH = 64,
    parameter MA = 4,
    parameter CW = 8,
    parameter RW = 8,
    parameter AW = 4,
    parameter MW = 16
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire [PORTS*WIDTH-1:0]   in_frames,
    input  wire [MA-1:0]            mem_rd_addr,
    output reg  [WIDTH-1:0]         mem_rd_data,
`include "tidesim_calendar_ports.vh"
);
`include "tidesim_calendar_inst.vh"

    reg [WIDTH-1:0] mem [0:(1 << MA) - 1];
    integer p;
    reg [CW-1:0] a;
    always @(posedge clk) begin
        mem_rd_data <= mem[mem_rd_addr];
        if (!rst)
            for (p = 0; p < PORTS; p = p + 1) begin
                a = cfg[p*CW +: CW];
                if (!a[CW-1])
                    mem[a[MA-1:0]] <= in_frames[p*WIDTH +: WIDTH];
            end
    end
endmodule

`default_nettype wire
