// The calendar of a unit built on tidesim_calendar, on its calendar ports.
    tidesim_calendar #(.PORTS(PORTS), .CW(CW), .RW(RW), .AW(AW), .MW(MW)) calendar (
        .clk(clk), .rst(rst), .wr_en(wr_en), .wr_addr(wr_addr), .wr_config(wr_config),
        .wr_repeat(wr_repeat), .swap_req(swap_req), .swap_depth(swap_depth),
        .cfg(cfg), .entry(entry), .metacycle(metacycle), .last_cycle(last_cycle),
        .swap_pending(swap_pending));
