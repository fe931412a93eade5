// Gray-code conversions of GRAY_W-bit values (the including module defines
// the localparam GRAY_W first).
    function [GRAY_W-1:0] bin2gray(input [GRAY_W-1:0] b);
        bin2gray = b ^ (b >> 1);
    endfunction

    function [GRAY_W-1:0] gray2bin(input [GRAY_W-1:0] g);
        integer i;
        begin
            gray2bin[GRAY_W-1] = g[GRAY_W-1];
            for (i = GRAY_W - 2; i >= 0; i = i - 1)
                gray2bin[i] = gray2bin[i + 1] ^ g[i];
        end
    endfunction
