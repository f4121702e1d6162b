## Digilent Arty A7-35T (Xilinx XC7A35TICSG324-1L) pins for `sc_neurocore_board`,
## the pin-level UART board top written by
##     python -m sc_neurocore.hw.board --board arty_a7 --bundle NET.scnb -o DIR
## (sc_neurocore.hw.board.BoardPins, clk_hz = 100 MHz, 115200 baud), for Vivado:
##     read_verilog DIR/sc_neurocore_board.v; read_xdc DIR/arty_a7.xdc
##     synth_design -top sc_neurocore_board -part xc7a35ticsg324-1L; ...
## Not built or checked here (no Vivado); the pins follow Digilent's Arty-A7-35-Master.xdc.
## If the core misses 100 MHz, generate it for a lower clock and add an MMCM.
##
##   port       pin  board net       note
##   clk        E3   CLK100MHZ       100 MHz oscillator
##   rst_n      C2   ck_rst          active low (the RESET button): pressed = reset
##   uart_rx    A9   uart_txd_in     USB-UART (FT2232) -> FPGA
##   uart_tx    D10  uart_rxd_out    FPGA -> USB-UART
##   led[0..3]  H5 J5 T9 T10  LD4..LD7   class index in binary, active high

set_property -dict { PACKAGE_PIN E3  IOSTANDARD LVCMOS33 } [get_ports { clk }];
create_clock -add -name sys_clk_pin -period 10.00 -waveform {0 5} [get_ports { clk }];

set_property -dict { PACKAGE_PIN C2  IOSTANDARD LVCMOS33 } [get_ports { rst_n }];
## Alternative: BTN0 (D9) is active high; to use it, invert it in a wrapper (rst_n = ~btn0).
## set_property -dict { PACKAGE_PIN D9  IOSTANDARD LVCMOS33 } [get_ports { btn0 }];

set_property -dict { PACKAGE_PIN A9  IOSTANDARD LVCMOS33 } [get_ports { uart_rx }];
set_property -dict { PACKAGE_PIN D10 IOSTANDARD LVCMOS33 } [get_ports { uart_tx }];

set_property -dict { PACKAGE_PIN H5  IOSTANDARD LVCMOS33 } [get_ports { led[0] }];
set_property -dict { PACKAGE_PIN J5  IOSTANDARD LVCMOS33 } [get_ports { led[1] }];
set_property -dict { PACKAGE_PIN T9  IOSTANDARD LVCMOS33 } [get_ports { led[2] }];
set_property -dict { PACKAGE_PIN T10 IOSTANDARD LVCMOS33 } [get_ports { led[3] }];

## The reset is synchronised inside the design; the button is asynchronous.
set_false_path -from [get_ports { rst_n }];
