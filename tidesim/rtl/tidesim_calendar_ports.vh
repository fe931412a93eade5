// The calendar ports of a unit built on tidesim_calendar (included in its
// port list, last); the unit has parameters PORTS, CW, RW, AW and MW.
    input  wire                      wr_en,
    input  wire [AW-1:0]             wr_addr,
    input  wire [PORTS*CW-1:0]       wr_config,
    input  wire [RW-1:0]             wr_repeat,
    input  wire                      swap_req,
    input  wire [AW:0]               swap_depth,
    output wire [PORTS*CW-1:0]       cfg,
    output wire [AW-1:0]             entry,
    output wire [MW-1:0]             metacycle,
    output wire                      last_cycle,
    output wire                      swap_pending
