/// The per-channel input normalisation of ImageNet-pretrained encoders (torchvision's ResNets, smp's encoders), on
/// samples scaled to [0, 1]: what an imported or pretrained model expects when its file does not say.
public enum PretrainedNormalization {
    /// ImageNet's mean and std for three channels; 0.5 / 0.25 for other channel counts.
    public static func meanStd(channels: Int) -> (mean: [Float], std: [Float]) {
        channels == 3
            ? ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
            : ([Float](repeating: 0.5, count: channels), [Float](repeating: 0.25, count: channels))
    }
}
