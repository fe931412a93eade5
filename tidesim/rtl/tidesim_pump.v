// tidesim_pump: the hardware rig's FINC/FDEC pump controller.
//
// Every PERIOD clock cycles it samples the counts of its N links (signed,
// CW bits each, relative to the buffers' midpoints), sums them, and forms
// the desired correction in actuator steps, in fixed point with FRAC
// fractional bits:
//
//     desired = GAIN * sum(counts) + TARGET
//
// It keeps the actuator's position (the FINC pulses issued less the FDEC
// ones) and, at most once per update, pulses FINC when the desired value is
// more than half a step above the position, FDEC when more than half a step
// below. GAIN = 2**FRAC * kp / step and TARGET = 2**FRAC * target / step.
//
// Synthesizable Verilog-2005.

`default_nettype none

module tidesim_pump #(
    parameter N = 2,
    parameter CW = 16,
    parameter FRAC = 8,
    parameter GAIN = 256,          // 1 step per frame
    parameter TARGET = 0,
    parameter PERIOD = 16,
    parameter ACC = 48             // bits of the arithmetic
) (
    input  wire              clk,
    input  wire              rst,
    input  wire [N*CW-1:0]   counts,
    output reg               finc,
    output reg               fdec,
    output reg               update,       // high on the cycle after each sample
    output reg signed [31:0] position
);
    reg [31:0] tick;
    reg signed [ACC-1:0] sum;
    integer i;
    always @(*) begin
        sum = 0;
        for (i = 0; i < N; i = i + 1)
            sum = sum + {{(ACC-CW){counts[i*CW+CW-1]}}, counts[i*CW +: CW]};
    end

    wire signed [ACC-1:0] desired = sum * GAIN + TARGET;
    wire signed [ACC-1:0] here = {{(ACC-32){position[31]}}, position} <<< FRAC;
    wire signed [ACC-1:0] half = 1 <<< (FRAC - 1);

    always @(posedge clk) begin
        if (rst) begin
            tick <= 0;
            finc <= 1'b0;
            fdec <= 1'b0;
            update <= 1'b0;
            position <= 0;
        end else begin
            finc <= 1'b0;
            fdec <= 1'b0;
            update <= 1'b0;
            if (tick == PERIOD - 1) begin
                tick <= 0;
                update <= 1'b1;
                if (desired > here + half) begin
                    finc <= 1'b1;
                    position <= position + 1;
                end else if (desired < here - half) begin
                    fdec <= 1'b1;
                    position <= position - 1;
                end
            end else begin
                tick <= tick + 1;
            end
        end
    end
endmodule

`default_nettype wire
