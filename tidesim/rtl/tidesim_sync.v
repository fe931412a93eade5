// tidesim_sync: a W-bit value carried into clk's domain through STAGES
// flip-flops (the value must change one bit at a time: Gray code, a toggle).
// q is the value d had STAGES - 1 edges before the last one; rst clears the
// stages.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_sync #(
    parameter W = 1,
    parameter STAGES = 2
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] d,
    output wire [W-1:0] q
);
    reg [W-1:0] stage [0:STAGES-1];
    integer s;
    always @(posedge clk) begin
        if (rst) begin
            for (s = 0; s < STAGES; s = s + 1)
                stage[s] <= 0;
        end else begin
            stage[0] <= d;
            for (s = 1; s < STAGES; s = s + 1)
                stage[s] <= stage[s - 1];
        end
    end
    assign q = stage[STAGES-1];
endmodule

`default_nettype wire
