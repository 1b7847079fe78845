//! Change-point detection on a metric's time series: Page's one-sided CUSUM on standardized
//! window values, with the change's onset estimated as the first window after the statistic last
//! stood at zero (Page's estimator). Attribution runs it per variant on windows of telemetry to
//! find when a metric degraded.
//!
//! Each window `t` gives a value `x_t` with its standard error `se_t`; against a baseline `μ`
//! and the smallest shift worth detecting `δ`, the statistic is
//! `S_t = max(0, S_{t−1} + (x_t − μ − δ/2) / se_t)` and an alarm is `S_t > h`. With `h = 5` and
//! `δ` the shift of interest, the in-control run between false alarms is long (hundreds of
//! windows) while a shift of `δ` or more is found within a few windows. Upward shifts only: the
//! caller negates a metric where lower is worse.

/// One window of the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CusumPoint {
    /// The metric's value in the window.
    pub value: f64,
    /// Its standard error; a window without one (no observations: zero, infinite or NaN) adds
    /// no evidence and leaves the statistic where it stood.
    pub standard_error: f64,
}

/// The CUSUM's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CusumConfig {
    /// The in-control mean `μ`.
    pub baseline: f64,
    /// The smallest upward shift worth detecting `δ`, in the value's unit (>= 0).
    pub shift: f64,
    /// The alarm threshold `h`, in standard errors (5 is the usual choice).
    pub threshold: f64,
}

/// A detected change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// The first window of the change (Page's estimate).
    pub onset: usize,
    /// The window in which the statistic crossed the threshold.
    pub alarm: usize,
    /// The statistic at the alarm.
    pub statistic: f64,
}

/// Runs the upper CUSUM over `points` and returns the first alarm, if any.
pub fn upper_cusum(points: &[CusumPoint], config: &CusumConfig) -> Option<ChangePoint> {
    let shift = if config.shift.is_finite() {
        config.shift.max(0.0)
    } else {
        0.0
    };
    let mut statistic = 0.0_f64;
    let mut onset = 0;
    for (index, point) in points.iter().enumerate() {
        let usable = point.value.is_finite()
            && point.standard_error.is_finite()
            && point.standard_error > 0.0;
        if !usable {
            continue;
        }
        let step = (point.value - config.baseline - shift / 2.0) / point.standard_error;
        if statistic <= 0.0 {
            // The statistic starts a new run here: if this run alarms, the change began here.
            onset = index;
        }
        statistic = (statistic + step).max(0.0);
        if statistic > config.threshold {
            return Some(ChangePoint {
                onset,
                alarm: index,
                statistic,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[f64], standard_error: f64) -> Vec<CusumPoint> {
        values
            .iter()
            .map(|&value| CusumPoint {
                value,
                standard_error,
            })
            .collect()
    }

    const CONFIG: CusumConfig = CusumConfig {
        baseline: 0.02,
        shift: 0.02,
        threshold: 5.0,
    };

    #[test]
    fn a_step_is_found_at_its_onset() {
        // Ten in-control windows, then the rate jumps from 2 % to 8 %.
        let mut values = vec![
            0.02, 0.025, 0.015, 0.02, 0.03, 0.01, 0.02, 0.02, 0.025, 0.02,
        ];
        values.extend([0.08, 0.07, 0.09, 0.08, 0.08]);
        let change = upper_cusum(&points(&values, 0.01), &CONFIG).unwrap();
        assert_eq!(change.onset, 10);
        // Each degraded window adds (0.08 − 0.03) / 0.01 = 5: the second crosses 5.
        assert_eq!(change.alarm, 11);
        assert!(change.statistic > 5.0);
    }

    #[test]
    fn noise_within_the_shift_never_alarms() {
        let values: Vec<f64> = (0..500)
            .map(|i| 0.02 + if i % 2 == 0 { 0.009 } else { -0.009 })
            .collect();
        assert_eq!(upper_cusum(&points(&values, 0.01), &CONFIG), None);
    }

    #[test]
    fn windows_without_data_add_no_evidence() {
        let mut series = points(&[0.02, 0.08, 0.08], 0.01);
        series.insert(
            1,
            CusumPoint {
                value: f64::NAN,
                standard_error: 0.0,
            },
        );
        let change = upper_cusum(&series, &CONFIG).unwrap();
        assert_eq!((change.onset, change.alarm), (2, 3));
    }

    #[test]
    fn a_downward_move_is_not_an_alarm() {
        let values = [0.02, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(upper_cusum(&points(&values, 0.001), &CONFIG), None);
    }
}
