//! Driver for the TI ADS1292R two-channel, 24-bit ECG/respiration front end
//! (datasheet SBAS502), over `embedded_hal::spi::SpiDevice` (SPI mode 1,
//! CPOL = 0, CPHA = 1) plus the active-low `DRDY` line as an `InputPin`.
//!
//! The driver never panics: every bus or protocol problem is an [`Error`].

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::{Operation, SpiDevice};

/// Register addresses (datasheet "Register Map").
pub mod reg {
    /// Device ID, read-only.
    pub const ID: u8 = 0x00;
    /// Conversion mode and data rate.
    pub const CONFIG1: u8 = 0x01;
    /// Reference, lead-off comparators, test signal.
    pub const CONFIG2: u8 = 0x02;
    /// Lead-off comparator threshold, current and mode.
    pub const LOFF: u8 = 0x03;
    /// Channel 1 power, gain and input mux.
    pub const CH1SET: u8 = 0x04;
    /// Channel 2 power, gain and input mux.
    pub const CH2SET: u8 = 0x05;
    /// Right-leg-drive buffer and derivation inputs.
    pub const RLD_SENS: u8 = 0x06;
    /// Inputs under lead-off detection.
    pub const LOFF_SENS: u8 = 0x07;
    /// Lead-off status (bits 4:0, read-only) and clock divider (bit 6).
    pub const LOFF_STAT: u8 = 0x08;
    /// Respiration demodulation/modulation and phase.
    pub const RESP1: u8 = 0x09;
    /// Offset calibration, respiration frequency, RLD reference.
    pub const RESP2: u8 = 0x0A;
    /// GPIO direction and data.
    pub const GPIO: u8 = 0x0B;
}

/// Command opcodes (datasheet "SPI Command Definitions").
pub mod opcode {
    /// Wake up from standby.
    pub const WAKEUP: u8 = 0x02;
    /// Enter standby.
    pub const STANDBY: u8 = 0x04;
    /// Reset the digital filter and all registers to their defaults.
    pub const RESET: u8 = 0x06;
    /// Start or restart conversions.
    pub const START: u8 = 0x08;
    /// Stop conversions.
    pub const STOP: u8 = 0x0A;
    /// Channel offset calibration.
    pub const OFFSETCAL: u8 = 0x1A;
    /// Enter read-data-continuous mode (the power-up default).
    pub const RDATAC: u8 = 0x10;
    /// Stop read-data-continuous mode; required before register access.
    pub const SDATAC: u8 = 0x11;
    /// Read one conversion by command.
    pub const RDATA: u8 = 0x12;
    /// Read registers: `RREG | address`, then `count - 1`.
    pub const RREG: u8 = 0x20;
    /// Write registers: `WREG | address`, then `count - 1`, then the data.
    pub const WREG: u8 = 0x40;
}

/// `ID` register value of an ADS1292R: REV_ID = 011 (ADS1292R), bit 4 set,
/// DEV_ID = 11 (two channels, 24 bits). A plain ADS1292 reads 0x53.
pub const DEVICE_ID_ADS1292R: u8 = 0x73;

/// One conversion in RDATAC/RDATA mode: 24 status bits + 2 × 24-bit samples.
pub const FRAME_LEN: usize = 9;

/// Number of configuration registers written as one burst (CONFIG1..=RESP2).
pub const CONFIG_LEN: usize = 10;

/// Command decode time t_SDECODE = 4 t_CLK with the 512 kHz internal clock
/// (7.8 µs), rounded up. Multi-byte commands need it between their bytes.
pub const DEFAULT_COMMAND_GAP_NS: u32 = 8_000;

/// Wait after RESET before the next command: 18 t_CLK at 512 kHz is 35.2 µs.
pub const RESET_WAIT_NS: u32 = 40_000;

/// Settling time of the internal reference buffer after it is powered up.
pub const REFERENCE_SETTLE_NS: u32 = 150_000_000;

/// Bits 23:20 of every status word are `1100`: a cheap frame-sync check.
const STATUS_SYNC_MASK: u32 = 0xF0_0000;
const STATUS_SYNC: u32 = 0xC0_0000;

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<S, P> {
    /// The SPI bus failed.
    Spi(S),
    /// Reading the DRDY pin failed.
    Pin(P),
    /// The ID register did not read as an ADS1292R.
    WrongDevice(u8),
    /// A configuration register read back differently from what was written.
    Verify {
        /// Register address.
        register: u8,
        /// Value written.
        wrote: u8,
        /// Value read back.
        read: u8,
    },
    /// A data frame's status word did not start with `1100`: the read was not
    /// aligned to a conversion (or the device is not answering).
    FrameSync(u32),
    /// Register access attempted while the device streams (RDATAC); call
    /// [`Ads1292r::stop_continuous`] first.
    Streaming,
    /// A streaming read attempted while the device is not in RDATAC mode.
    NotStreaming,
    /// A register range outside the map, or an empty one.
    BadRegisterRange,
}

/// Output data rate (CONFIG1 bits 2:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataRate {
    /// 125 samples/s.
    Sps125 = 0b000,
    /// 250 samples/s.
    Sps250 = 0b001,
    /// 500 samples/s (power-up default).
    Sps500 = 0b010,
    /// 1 kSPS.
    Sps1k = 0b011,
    /// 2 kSPS.
    Sps2k = 0b100,
    /// 4 kSPS.
    Sps4k = 0b101,
    /// 8 kSPS.
    Sps8k = 0b110,
}

impl DataRate {
    /// Samples per second.
    pub const fn hz(self) -> u32 {
        125 << (self as u32)
    }
}

/// PGA gain (CHnSET bits 6:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Gain {
    /// ×6 (power-up default).
    X6 = 0b000,
    /// ×1.
    X1 = 0b001,
    /// ×2.
    X2 = 0b010,
    /// ×3.
    X3 = 0b011,
    /// ×4.
    X4 = 0b100,
    /// ×8.
    X8 = 0b101,
    /// ×12.
    X12 = 0b110,
}

/// Channel input selection (CHnSET bits 3:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Input {
    /// Normal electrode input.
    Normal = 0b0000,
    /// Inputs shorted (offset measurement; also used for unused channels).
    Shorted = 0b0001,
    /// RLD_MEASURE.
    RldMeasure = 0b0010,
    /// MVDD supply measurement.
    Supply = 0b0011,
    /// Temperature sensor.
    Temperature = 0b0100,
    /// Internal test signal.
    TestSignal = 0b0101,
}

/// One channel's CHnSET settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelConfig {
    /// Power the channel down (its PGA and ADC).
    pub power_down: bool,
    /// PGA gain.
    pub gain: Gain,
    /// Input mux.
    pub input: Input,
}

impl ChannelConfig {
    /// CHnSET register value.
    pub const fn bits(&self) -> u8 {
        ((self.power_down as u8) << 7) | ((self.gain as u8) << 4) | self.input as u8
    }
}

/// Lead-off excitation current magnitude (LOFF bits 3:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LeadOffCurrent {
    /// 6 nA.
    Na6 = 0b00,
    /// 22 nA.
    Na22 = 0b01,
    /// 6 µA.
    Ua6 = 0b10,
    /// 22 µA.
    Ua22 = 0b11,
}

/// Lead-off detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeadOffConfig {
    /// Comparator threshold code (LOFF bits 7:5): 0 = 95 %/5 % of the supply,
    /// up to 7 = 70 %/30 %.
    pub threshold: u8,
    /// Excitation current.
    pub current: LeadOffCurrent,
    /// AC (fDR/4) instead of DC excitation.
    pub ac: bool,
    /// Inputs under detection: LOFF_SENS bits 3:0 = LOFF2N, LOFF2P, LOFF1N,
    /// LOFF1P.
    pub inputs: u8,
}

/// Right-leg-drive settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RldConfig {
    /// Power up the RLD buffer (PDB_RLD).
    pub enabled: bool,
    /// Report the RLD electrode in lead-off status (RLD_LOFF_SENS).
    pub lead_off_sense: bool,
    /// Derivation inputs: RLD_SENS bits 3:0 = RLD2N, RLD2P, RLD1N, RLD1P.
    pub inputs: u8,
}

/// Respiration (impedance) measurement on channel 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RespirationConfig {
    /// Demodulation phase code (RESP1 bits 5:2), 11.25° steps at 32 kHz.
    pub phase: u8,
}

/// Full device configuration: the values of CONFIG1..=RESP2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Output data rate.
    pub data_rate: DataRate,
    /// Channel 1 (the respiration channel on the ADS1292R).
    pub ch1: ChannelConfig,
    /// Channel 2.
    pub ch2: ChannelConfig,
    /// 4.033 V reference instead of 2.42 V (needs a 5 V analog supply).
    pub vref_4v: bool,
    /// Lead-off detection; `None` powers the comparators down.
    pub lead_off: Option<LeadOffConfig>,
    /// Right-leg drive.
    pub rld: RldConfig,
    /// Respiration on channel 1; `None` turns the modulator off.
    pub respiration: Option<RespirationConfig>,
}

impl Config {
    /// A single-lead ECG monitor: ECG on channel 2 at `data_rate` with gain 6,
    /// channel 1 powered down and shorted, internal 2.42 V reference, RLD
    /// driven from channel 2, DC lead-off detection (6 nA, 95 %/5 %) on both
    /// channel 2 electrodes and on RLD.
    pub const fn ecg(data_rate: DataRate) -> Config {
        Config {
            data_rate,
            ch1: ChannelConfig {
                power_down: true,
                gain: Gain::X6,
                input: Input::Shorted,
            },
            ch2: ChannelConfig {
                power_down: false,
                gain: Gain::X6,
                input: Input::Normal,
            },
            vref_4v: false,
            lead_off: Some(LeadOffConfig {
                threshold: 0,
                current: LeadOffCurrent::Na6,
                ac: false,
                inputs: 0b1100,
            }),
            rld: RldConfig {
                enabled: true,
                lead_off_sense: true,
                inputs: 0b1100,
            },
            respiration: None,
        }
    }

    /// Register values for CONFIG1..=RESP2, in address order.
    pub const fn registers(&self) -> [u8; CONFIG_LEN] {
        // CONFIG1: continuous conversion (bit 7 = 0), bits 6:3 must be 0.
        let config1 = self.data_rate as u8;
        // CONFIG2: bit 7 must be 1; PDB_LOFF_COMP (6); PDB_REFBUF (5) on for
        // the internal reference; VREF_4V (4); no clock out, no test signal.
        let config2 =
            0x80 | ((self.lead_off.is_some() as u8) << 6) | 0x20 | ((self.vref_4v as u8) << 4);
        // LOFF: bit 4 must be 1.
        let (loff, loff_sens) = match self.lead_off {
            Some(l) => (
                ((l.threshold & 0b111) << 5) | 0x10 | ((l.current as u8) << 2) | (l.ac as u8),
                l.inputs & 0x0F,
            ),
            None => (0x10, 0x00),
        };
        // RLD_SENS: chop at fMOD/16 (bits 7:6 = 00).
        let rld_sens = ((self.rld.enabled as u8) << 5)
            | ((self.rld.lead_off_sense as u8) << 4)
            | (self.rld.inputs & 0x0F);
        // LOFF_STAT: only CLK_DIV (bit 6) is writable; 0 = 512 kHz clock.
        let loff_stat = 0x00;
        // RESP1: bit 1 must be 1; RESP_CTRL (bit 0) = 0, internal clock.
        let resp1 = match self.respiration {
            Some(r) => 0xC0 | ((r.phase & 0x0F) << 2) | 0x02,
            None => 0x02,
        };
        // RESP2: bit 0 must be 1; RLDREF_INT (bit 1) = (AVDD + AVSS) / 2
        // generated inside; RESP_FREQ (bit 2) = 0 for 32 kHz; no calibration.
        let resp2 = 0x03;
        [
            config1,
            config2,
            loff,
            self.ch1.bits(),
            self.ch2.bits(),
            rld_sens,
            loff_sens,
            loff_stat,
            resp1,
            resp2,
        ]
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::ecg(DataRate::Sps500)
    }
}

/// Lead-off status bits, as in LOFF_STAT bits 4:0 and the status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeadOff(pub u8);

impl LeadOff {
    /// IN1P (channel 1 positive) is off.
    pub const IN1P: u8 = 1 << 0;
    /// IN1N (channel 1 negative) is off.
    pub const IN1N: u8 = 1 << 1;
    /// IN2P (channel 2 positive) is off.
    pub const IN2P: u8 = 1 << 2;
    /// IN2N (channel 2 negative) is off.
    pub const IN2N: u8 = 1 << 3;
    /// The RLD electrode is off.
    pub const RLD: u8 = 1 << 4;

    /// Any electrode off.
    pub const fn any(self) -> bool {
        self.0 & 0x1F != 0
    }

    /// An electrode of `channel` (1 or 2) is off, or the RLD electrode is.
    pub const fn channel_off(self, channel: Channel) -> bool {
        let mask = match channel {
            Channel::Ch1 => Self::IN1P | Self::IN1N,
            Channel::Ch2 => Self::IN2P | Self::IN2N,
        };
        self.0 & (mask | Self::RLD) != 0
    }
}

/// One of the two ADC channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Channel {
    /// Channel 1 (respiration-capable).
    Ch1,
    /// Channel 2.
    Ch2,
}

/// One decoded conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame {
    /// Lead-off status at this conversion.
    pub lead_off: LeadOff,
    /// GPIO2:GPIO1 levels.
    pub gpio: u8,
    /// Channel 1, sign-extended 24-bit code (1 LSB = VREF / (gain · 2^23)).
    pub ch1: i32,
    /// Channel 2, likewise.
    pub ch2: i32,
}

impl Frame {
    /// Decode a raw 9-byte frame. Fails when the status preamble is wrong.
    pub fn decode(raw: &[u8; FRAME_LEN]) -> Result<Frame, u32> {
        let [s0, s1, s2, a0, a1, a2, b0, b1, b2] = *raw;
        let status = u32::from_be_bytes([0, s0, s1, s2]);
        if status & STATUS_SYNC_MASK != STATUS_SYNC {
            return Err(status);
        }
        Ok(Frame {
            // Status = 1100 | LOFF_STAT[4:0] | GPIO[1:0] | 13 zero bits.
            lead_off: LeadOff(((status >> 15) & 0x1F) as u8),
            gpio: ((status >> 13) & 0b11) as u8,
            ch1: sign_extend_24(a0, a1, a2),
            ch2: sign_extend_24(b0, b1, b2),
        })
    }

    /// The sample of one channel.
    pub const fn channel(&self, channel: Channel) -> i32 {
        match channel {
            Channel::Ch1 => self.ch1,
            Channel::Ch2 => self.ch2,
        }
    }
}

/// Two's-complement 24-bit big-endian to `i32`.
const fn sign_extend_24(b0: u8, b1: u8, b2: u8) -> i32 {
    // Place the 24 bits at the top, then shift back arithmetically.
    i32::from_be_bytes([b0, b1, b2, 0]) >> 8
}

/// The ADS1292R on an SPI device with its DRDY line.
pub struct Ads1292r<SPI, DRDY> {
    spi: SPI,
    drdy: DRDY,
    gap_ns: u32,
    streaming: bool,
}

type DevResult<T, SPI, DRDY> = core::result::Result<
    T,
    Error<
        <SPI as embedded_hal::spi::ErrorType>::Error,
        <DRDY as embedded_hal::digital::ErrorType>::Error,
    >,
>;

impl<SPI: SpiDevice, DRDY: InputPin> Ads1292r<SPI, DRDY> {
    /// Wrap the bus and the DRDY pin. The device is assumed to be in its
    /// power-up state (streaming, RDATAC); [`init`](Self::init) resets it.
    pub fn new(spi: SPI, drdy: DRDY) -> Self {
        Ads1292r {
            spi,
            drdy,
            gap_ns: DEFAULT_COMMAND_GAP_NS,
            streaming: true,
        }
    }

    /// Set the pause inserted between the bytes of a command (t_SDECODE).
    /// 0 is correct only when SCLK is slow enough that one byte lasts more
    /// than 4 t_CLK (below ~1 MHz with the internal clock).
    pub fn set_command_gap_ns(&mut self, ns: u32) {
        self.gap_ns = ns;
    }

    /// Give the bus and pin back.
    pub fn release(self) -> (SPI, DRDY) {
        (self.spi, self.drdy)
    }

    /// Whether the device is streaming conversions (RDATAC).
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Bring the device up: RESET, SDATAC, check the ID, write and verify
    /// `config`, let the reference settle, START and enter RDATAC.
    ///
    /// The caller must already have waited the power-on time (2^18 t_CLK,
    /// ~0.5 s) with /PWDN and /RESET high.
    pub fn init(&mut self, config: &Config, delay: &mut impl DelayNs) -> DevResult<(), SPI, DRDY> {
        self.command(opcode::RESET)?;
        delay.delay_ns(RESET_WAIT_NS);
        // The device comes out of reset streaming: stop it to reach registers.
        self.streaming = true;
        self.stop_continuous()?;
        let id = self.read_register(reg::ID)?;
        if id != DEVICE_ID_ADS1292R {
            return Err(Error::WrongDevice(id));
        }
        let wanted = config.registers();
        self.write_registers(reg::CONFIG1, &wanted)?;
        let mut got = [0u8; CONFIG_LEN];
        self.read_registers(reg::CONFIG1, &mut got)?;
        for (i, (&w, &r)) in wanted.iter().zip(got.iter()).enumerate() {
            let register = reg::CONFIG1 + i as u8;
            // LOFF_STAT bits 4:0 report live electrode status, not what we wrote.
            let mask = if register == reg::LOFF_STAT {
                0xE0
            } else {
                0xFF
            };
            if w & mask != r & mask {
                return Err(Error::Verify {
                    register,
                    wrote: w,
                    read: r,
                });
            }
        }
        delay.delay_ns(REFERENCE_SETTLE_NS);
        self.command(opcode::START)?;
        self.start_continuous()
    }

    /// Send a single-byte command (WAKEUP, STANDBY, START, STOP, OFFSETCAL…).
    pub fn command(&mut self, op: u8) -> DevResult<(), SPI, DRDY> {
        let gap = self.gap_ns;
        self.spi
            .transaction(&mut [Operation::Write(&[op]), Operation::DelayNs(gap)][..ops_len(1, gap)])
            .map_err(Error::Spi)
    }

    /// Leave RDATAC mode (SDATAC) so registers can be accessed.
    pub fn stop_continuous(&mut self) -> DevResult<(), SPI, DRDY> {
        self.command(opcode::SDATAC)?;
        self.streaming = false;
        Ok(())
    }

    /// Enter RDATAC mode: every DRDY falling edge then has a frame to read.
    pub fn start_continuous(&mut self) -> DevResult<(), SPI, DRDY> {
        self.command(opcode::RDATAC)?;
        self.streaming = true;
        Ok(())
    }

    /// Read one register.
    pub fn read_register(&mut self, address: u8) -> DevResult<u8, SPI, DRDY> {
        let mut v = [0u8; 1];
        self.read_registers(address, &mut v)?;
        Ok(v[0])
    }

    /// Write one register.
    pub fn write_register(&mut self, address: u8, value: u8) -> DevResult<(), SPI, DRDY> {
        self.write_registers(address, &[value])
    }

    /// Read `out.len()` consecutive registers starting at `address` (RREG).
    pub fn read_registers(&mut self, address: u8, out: &mut [u8]) -> DevResult<(), SPI, DRDY> {
        let count = self.check_range(address, out.len())?;
        let header = [opcode::RREG | address, count - 1];
        let gap = self.gap_ns;
        if gap == 0 {
            self.spi
                .transaction(&mut [Operation::Write(&header), Operation::Read(out)])
                .map_err(Error::Spi)
        } else {
            let (h0, h1) = header.split_at(1);
            self.spi
                .transaction(&mut [
                    Operation::Write(h0),
                    Operation::DelayNs(gap),
                    Operation::Write(h1),
                    Operation::DelayNs(gap),
                    Operation::Read(out),
                ])
                .map_err(Error::Spi)
        }
    }

    /// Write `data` to consecutive registers starting at `address` (WREG).
    pub fn write_registers(&mut self, address: u8, data: &[u8]) -> DevResult<(), SPI, DRDY> {
        let count = self.check_range(address, data.len())?;
        // Opcode, count − 1 and at most 12 data bytes (the whole map).
        let mut bytes = [0u8; 2 + 12];
        let n = 2 + data.len();
        let (header, rest) = bytes.split_at_mut(2);
        header.copy_from_slice(&[opcode::WREG | address, count - 1]);
        for (dst, src) in rest.iter_mut().zip(data) {
            *dst = *src;
        }
        let gap = self.gap_ns;
        if gap == 0 {
            let payload = bytes.get(..n).ok_or(Error::BadRegisterRange)?;
            return self
                .spi
                .transaction(&mut [Operation::Write(payload)])
                .map_err(Error::Spi);
        }
        // Each byte is followed by a t_SDECODE pause, so the device can decode it.
        let mut ops: [Operation<'_, u8>; 2 * 14] =
            core::array::from_fn(|_| Operation::DelayNs(gap));
        for (pair, byte) in ops.chunks_mut(2).zip(bytes.chunks(1)).take(n) {
            if let Some(op) = pair.first_mut() {
                *op = Operation::Write(byte);
            }
        }
        let ops = ops.get_mut(..2 * n).ok_or(Error::BadRegisterRange)?;
        self.spi.transaction(ops).map_err(Error::Spi)
    }

    /// Whether a conversion is waiting (DRDY is low).
    pub fn data_ready(&mut self) -> DevResult<bool, SPI, DRDY> {
        self.drdy.is_low().map_err(Error::Pin)
    }

    /// Read the frame of the latest conversion in RDATAC mode. Call it after
    /// DRDY falls ([`data_ready`](Self::data_ready)); the device needs no
    /// command for this, it shifts the frame out on SCLK.
    pub fn read_frame(&mut self) -> DevResult<Frame, SPI, DRDY> {
        if !self.streaming {
            return Err(Error::NotStreaming);
        }
        let mut raw = [0u8; FRAME_LEN];
        self.spi.read(&mut raw).map_err(Error::Spi)?;
        Frame::decode(&raw).map_err(Error::FrameSync)
    }

    /// `Some(frame)` if DRDY is low, else `None`: the non-blocking read.
    pub fn poll_frame(&mut self) -> DevResult<Option<Frame>, SPI, DRDY> {
        if self.data_ready()? {
            self.read_frame().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Read one conversion by command (RDATA), outside RDATAC mode.
    pub fn read_frame_by_command(&mut self) -> DevResult<Frame, SPI, DRDY> {
        if self.streaming {
            return Err(Error::Streaming);
        }
        let mut raw = [0u8; FRAME_LEN];
        let gap = self.gap_ns;
        let done = if gap == 0 {
            self.spi.transaction(&mut [
                Operation::Write(&[opcode::RDATA]),
                Operation::Read(&mut raw),
            ])
        } else {
            self.spi.transaction(&mut [
                Operation::Write(&[opcode::RDATA]),
                Operation::DelayNs(gap),
                Operation::Read(&mut raw),
            ])
        };
        done.map_err(Error::Spi)?;
        Frame::decode(&raw).map_err(Error::FrameSync)
    }

    /// Read the lead-off status register (outside RDATAC mode). In RDATAC
    /// mode the same bits arrive with every [`Frame`].
    pub fn lead_off_status(&mut self) -> DevResult<LeadOff, SPI, DRDY> {
        Ok(LeadOff(self.read_register(reg::LOFF_STAT)? & 0x1F))
    }

    fn check_range(&self, address: u8, len: usize) -> DevResult<u8, SPI, DRDY> {
        if self.streaming {
            return Err(Error::Streaming);
        }
        let last = usize::from(address) + len;
        if len == 0 || last > usize::from(reg::GPIO) + 1 {
            return Err(Error::BadRegisterRange);
        }
        // `len` ≤ 12 here.
        Ok(len as u8)
    }
}

impl<SPI: SpiDevice, DRDY: InputPin + embedded_hal_async::digital::Wait> Ads1292r<SPI, DRDY> {
    /// Wait until a conversion is ready (DRDY low), sleeping meanwhile: on a
    /// board whose HAL wires the pin to an edge interrupt (embassy's GPIOTE
    /// or EXTI inputs), the core idles between samples instead of polling.
    /// Returns at once when DRDY is already low, so a frame whose edge came
    /// before the call is not missed.
    pub async fn wait_ready(&mut self) -> DevResult<(), SPI, DRDY> {
        self.drdy.wait_for_low().await.map_err(Error::Pin)
    }
}

/// Operations to use for a command of `bytes` bytes: the trailing pause only
/// when there is one.
const fn ops_len(bytes: usize, gap: u32) -> usize {
    if gap == 0 {
        bytes
    } else {
        2 * bytes
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as D};
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as P};
    use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as S};
    use std::vec;
    use std::vec::Vec;

    /// The default ECG configuration, register by register, from the
    /// datasheet's bit tables (not from `Config::registers`).
    const ECG_500: [u8; 10] = [
        0x02, // CONFIG1: continuous, DR = 010 (500 SPS)
        0xE0, // CONFIG2: 1, PDB_LOFF_COMP, PDB_REFBUF, 2.42 V
        0x10, // LOFF: COMP_TH 95 %, bit 4 = 1, 6 nA, DC
        0x81, // CH1SET: powered down, gain 6, inputs shorted
        0x00, // CH2SET: on, gain 6, normal electrodes
        0x3C, // RLD_SENS: chop fMOD/16, PDB_RLD, RLD_LOFF_SENS, RLD2N, RLD2P
        0x0C, // LOFF_SENS: LOFF2N, LOFF2P
        0x00, // LOFF_STAT: CLK_DIV = 0 (512 kHz)
        0x02, // RESP1: respiration off, bit 1 = 1
        0x03, // RESP2: RLDREF_INT, bit 0 = 1, 32 kHz
    ];

    fn cmd(op: u8) -> Vec<S<u8>> {
        vec![
            S::transaction_start(),
            S::write_vec(vec![op]),
            S::transaction_end(),
        ]
    }

    fn device(spi: &[S<u8>], pin: &[P]) -> (Ads1292r<SpiMock<u8>, PinMock>, SpiMock<u8>, PinMock) {
        let spi = SpiMock::new(spi);
        let pin = PinMock::new(pin);
        let mut dev = Ads1292r::new(spi.clone(), pin.clone());
        dev.set_command_gap_ns(0);
        (dev, spi, pin)
    }

    fn init_script(id: u8, readback: &[u8]) -> Vec<S<u8>> {
        let mut t = Vec::new();
        t.extend(cmd(0x06)); // RESET
        t.extend(cmd(0x11)); // SDATAC
        t.extend([
            S::transaction_start(),
            S::write_vec(vec![0x20, 0x00]), // RREG ID, 1 register
            S::read_vec(vec![id]),
            S::transaction_end(),
        ]);
        if id != 0x73 {
            return t;
        }
        let mut wreg = vec![0x41, 0x09]; // WREG CONFIG1, 10 registers
        wreg.extend_from_slice(&ECG_500);
        t.extend([
            S::transaction_start(),
            S::write_vec(wreg),
            S::transaction_end(),
        ]);
        t.extend([
            S::transaction_start(),
            S::write_vec(vec![0x21, 0x09]), // RREG CONFIG1, 10 registers
            S::read_vec(readback.to_vec()),
            S::transaction_end(),
        ]);
        t
    }

    #[test]
    fn default_config_matches_datasheet_bits() {
        assert_eq!(Config::default().registers(), ECG_500);
        assert_eq!(DataRate::Sps500.hz(), 500);
        assert_eq!(DataRate::Sps125.hz(), 125);
        assert_eq!(DataRate::Sps8k.hz(), 8000);
    }

    #[test]
    fn respiration_and_lead_off_options_set_their_bits() {
        let mut c = Config::ecg(DataRate::Sps250);
        c.respiration = Some(RespirationConfig { phase: 0b1100 }); // 135°
        c.lead_off = None;
        c.ch1 = ChannelConfig {
            power_down: false,
            gain: Gain::X12,
            input: Input::Normal,
        };
        let r = c.registers();
        assert_eq!(r[0], 0x01); // 250 SPS
        assert_eq!(r[1], 0xA0); // comparators powered down, reference on
        assert_eq!(r[2], 0x10);
        assert_eq!(r[3], 0x60); // gain 12 = 110
        assert_eq!(r[6], 0x00); // no lead-off sensing
        assert_eq!(r[8], 0xF2); // DEMOD_EN1, MOD_EN, phase 1100, bit 1
    }

    #[test]
    fn init_runs_the_datasheet_sequence() {
        // LOFF_STAT reads back with live lead-off bits set: not a mismatch.
        let mut readback = ECG_500;
        readback[7] = 0x1F;
        let mut t = init_script(0x73, &readback);
        t.extend(cmd(0x08)); // START
        t.extend(cmd(0x10)); // RDATAC
        let (mut dev, mut spi, mut pin) = device(&t, &[]);
        let mut delay = CheckedDelay::new(&[D::delay_ns(40_000), D::delay_ns(150_000_000)]);
        dev.init(&Config::default(), &mut delay).unwrap();
        assert!(dev.is_streaming());
        spi.done();
        pin.done();
        delay.done();
    }

    #[test]
    fn init_rejects_other_devices() {
        // An ADS1292 (no R) reads REV_ID = 010.
        let t = init_script(0x53, &[]);
        let (mut dev, mut spi, mut pin) = device(&t, &[]);
        let err = dev.init(&Config::default(), &mut NoopDelay::new());
        assert_eq!(err, Err(Error::WrongDevice(0x53)));
        spi.done();
        pin.done();
    }

    #[test]
    fn init_reports_a_register_that_did_not_stick() {
        let mut readback = ECG_500;
        readback[1] = 0x80; // CONFIG2 lost its enables
        let t = init_script(0x73, &readback);
        let (mut dev, mut spi, mut pin) = device(&t, &[]);
        let err = dev.init(&Config::default(), &mut NoopDelay::new());
        assert_eq!(
            err,
            Err(Error::Verify {
                register: 0x02,
                wrote: 0xE0,
                read: 0x80
            })
        );
        spi.done();
        pin.done();
    }

    #[test]
    fn multi_byte_commands_pause_between_bytes() {
        let g = 8_000;
        let t = [
            // SDATAC
            S::transaction_start(),
            S::write_vec(vec![0x11]),
            S::delay(g),
            S::transaction_end(),
            // WREG CH2SET, 1 register, gain 3 + test signal = 0x35
            S::transaction_start(),
            S::write_vec(vec![0x45]),
            S::delay(g),
            S::write_vec(vec![0x00]),
            S::delay(g),
            S::write_vec(vec![0x35]),
            S::delay(g),
            S::transaction_end(),
            // RREG LOFF_STAT
            S::transaction_start(),
            S::write_vec(vec![0x28]),
            S::delay(g),
            S::write_vec(vec![0x00]),
            S::delay(g),
            S::read_vec(vec![0x4C]),
            S::transaction_end(),
        ];
        let mut spi = SpiMock::new(&t);
        let mut pin = PinMock::new(&[]);
        let mut dev = Ads1292r::new(spi.clone(), pin.clone());
        dev.stop_continuous().unwrap();
        let ch2 = ChannelConfig {
            power_down: false,
            gain: Gain::X3,
            input: Input::TestSignal,
        };
        dev.write_register(reg::CH2SET, ch2.bits()).unwrap();
        // 0x4C: CLK_DIV set, IN2N and IN2P off.
        let status = dev.lead_off_status().unwrap();
        assert_eq!(status, LeadOff(LeadOff::IN2N | LeadOff::IN2P));
        assert!(status.channel_off(Channel::Ch2));
        assert!(!status.channel_off(Channel::Ch1));
        spi.done();
        pin.done();
    }

    #[test]
    fn register_access_needs_sdatac_and_a_valid_range() {
        let (mut dev, mut spi, mut pin) = device(&cmd(0x11), &[]);
        assert_eq!(dev.read_register(reg::ID), Err(Error::Streaming));
        dev.stop_continuous().unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            dev.read_registers(reg::GPIO, &mut buf),
            Err(Error::BadRegisterRange)
        );
        assert_eq!(
            dev.write_registers(reg::CONFIG1, &[]),
            Err(Error::BadRegisterRange)
        );
        assert_eq!(
            dev.write_registers(0x20, &[0]),
            Err(Error::BadRegisterRange)
        );
        assert_eq!(dev.read_frame(), Err(Error::NotStreaming));
        spi.done();
        pin.done();
    }

    #[test]
    fn frames_decode_status_and_twos_complement_samples() {
        // Status 1100 | RLD off, IN2N off (bits 19, 18) | GPIO = 10 (bit 14) → 0xCC_4000.
        let raw = [0xCC, 0x40, 0x00, 0x7F, 0xFF, 0xFF, 0x80, 0x00, 0x00];
        let f = Frame::decode(&raw).unwrap();
        assert_eq!(f.lead_off, LeadOff(LeadOff::RLD | LeadOff::IN2N));
        assert_eq!(f.gpio, 0b10);
        assert_eq!(f.ch1, 8_388_607);
        assert_eq!(f.ch2, -8_388_608);
        assert!(f.lead_off.any());

        let raw = [0xC0, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x00];
        let f = Frame::decode(&raw).unwrap();
        assert_eq!(f.lead_off, LeadOff(0));
        assert!(!f.lead_off.any());
        assert_eq!(f.channel(Channel::Ch1), -1);
        assert_eq!(f.channel(Channel::Ch2), 256);

        // A read that slipped by a byte has no 1100 preamble.
        let raw = [0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(Frame::decode(&raw), Err(0x00C000));
    }

    #[test]
    fn streaming_reads_follow_drdy() {
        let frame = vec![0xC2, 0x00, 0x00, 0x00, 0x00, 0x10, 0xFF, 0xFF, 0xF0];
        let t = [
            S::transaction_start(),
            S::read_vec(frame),
            S::transaction_end(),
        ];
        let pins = [P::get(State::High), P::get(State::Low)];
        let (mut dev, mut spi, mut pin) = device(&t, &pins);
        assert_eq!(dev.poll_frame(), Ok(None));
        let f = dev.poll_frame().unwrap().unwrap();
        assert_eq!(f.lead_off, LeadOff(LeadOff::IN2P)); // status bit 17
        assert_eq!(f.ch1, 16);
        assert_eq!(f.ch2, -16);
        spi.done();
        pin.done();
    }

    #[test]
    fn rdata_reads_one_conversion_by_command() {
        let mut t = cmd(0x11);
        t.extend([
            S::transaction_start(),
            S::write_vec(vec![0x12]),
            S::read_vec(vec![0xC0, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02]),
            S::transaction_end(),
        ]);
        let (mut dev, mut spi, mut pin) = device(&t, &[]);
        assert_eq!(dev.read_frame_by_command(), Err(Error::Streaming));
        dev.stop_continuous().unwrap();
        let f = dev.read_frame_by_command().unwrap();
        assert_eq!((f.ch1, f.ch2), (1, 2));
        spi.done();
        pin.done();
    }
}
